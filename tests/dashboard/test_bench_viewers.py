"""The classroom load benchmark (dashboard.bench_viewers) on a small scale: two real browsers on
E1's two-run Compare link, against a fresh dashboard (and N = 1 as the marginal's baseline).

Uses Debian's /usr/bin/chromium (never a downloaded browser): skipped without it, except under
CI=true, where it fails, like the end-to-end tests.
"""

from __future__ import annotations

import math
import os
import time

import pytest

from dashboard import bench_viewers


@pytest.fixture
def chromium_present():
    if not bench_viewers.CHROMIUM.exists():
        message = f"{bench_viewers.CHROMIUM} is missing (apt-get install -y chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


@pytest.mark.slow
def test_two_viewers_on_the_two_run_compare_link(chromium_present):
    results = bench_viewers.run_benchmark(viewers=[2], links=["compare2"], idle_seconds=3, timeout=90)

    assert [(row.link, row.viewers) for row in results] == [("compare2", 1), ("compare2", 2)]
    two = results[1]
    assert two.problems == []
    assert two.completed == 2
    for figure in (two.cold_cpu, two.cpu_per_viewer, two.last_complete_s, two.idle_cpu_per_viewer_s):
        assert figure is not None
        assert math.isfinite(figure)
        assert figure > 0
    assert two.marginal_cpu is not None
    assert math.isfinite(two.marginal_cpu)  # a difference of two runs: positive in practice, not by construction
    report = bench_viewers.table(results)
    assert "compare2" in report
    assert any(line.startswith("compare2, N=2: all viewers complete in") for line in bench_viewers.verdicts(results))


def test_cpu_seconds_counts_this_process_working():
    began = bench_viewers.cpu_seconds(os.getpid())
    deadline = time.monotonic() + 5
    while bench_viewers.cpu_seconds(os.getpid()) - began < 0.05 and time.monotonic() < deadline:
        sum(range(100_000))  # burn a little CPU, bounded
    assert bench_viewers.cpu_seconds(os.getpid()) - began >= 0.05
