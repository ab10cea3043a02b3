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


@pytest.mark.slow
def test_two_viewers_on_the_two_run_compare_link(chromium_present):
    results = bench_viewers.run_benchmark(
        viewers=[2], links=["compare2"], clients=["browser"], idle_seconds=3, timeout=90
    )

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
    assert any(
        line.startswith("compare2, browser, N=2: all viewers complete in") for line in bench_viewers.verdicts(results)
    )


def test_cpu_seconds_counts_this_process_working():
    began = bench_viewers.cpu_seconds(os.getpid())
    deadline = time.monotonic() + 5
    while bench_viewers.cpu_seconds(os.getpid()) - began < 0.05 and time.monotonic() < deadline:
        sum(range(100_000))  # burn a little CPU, bounded
    assert bench_viewers.cpu_seconds(os.getpid()) - began >= 0.05


@pytest.mark.slow
def test_protocol_viewers_through_nginx_see_every_chart_and_keep_ticking(chromium_present, nginx_present):
    """Viewers that speak Streamlit's protocol behind deploy/nginx.conf: every one gets E1's
    charts, and the server (dashboard and nginx) does work for their ticks while they sit open."""
    results = bench_viewers.run_benchmark(
        viewers=[3], links=["compare2"], clients=["protocol"], idle_seconds=5, timeout=60, front="nginx"
    )

    assert [(row.client, row.viewers) for row in results] == [("protocol via nginx", 1), ("protocol via nginx", 3)]
    three = results[1]
    assert three.problems == []
    assert three.completed == 3
    assert three.last_complete_s is not None
    assert three.idle_cpu_per_viewer_s > 0  # the open sessions' fragment ticks reach the dashboard through nginx
    assert three.marginal_cpu is not None
    assert math.isfinite(three.marginal_cpu)


def test_a_protocol_viewer_asks_for_the_links_page_and_query():
    from streamlit.proto.BackMsg_pb2 import BackMsg

    link = bench_viewers.Link("compare2", "compare?runs=3,4", 2)
    viewer = bench_viewers.ProtocolViewer("http://127.0.0.1:1", link, [])

    first = BackMsg.FromString(viewer._rerun())
    tick = BackMsg.FromString(viewer._rerun("fragment-1"))

    assert (first.rerun_script.page_name, first.rerun_script.query_string) == ("compare", "runs=3,4")
    assert not first.rerun_script.fragment_id
    assert (tick.rerun_script.fragment_id, tick.rerun_script.is_auto_rerun) == ("fragment-1", True)


def test_unknown_clients_and_fronts_are_refused_by_name():
    with pytest.raises(ValueError, match="--clients takes browser and/or protocol"):
        bench_viewers.run_benchmark(viewers=[1], links=["compare2"], clients=["curl"])
    with pytest.raises(ValueError, match="--front takes none or nginx"):
        bench_viewers.run_benchmark(viewers=[1], links=["compare2"], front="apache")
