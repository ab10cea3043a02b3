"""Dashboard at scale: the Compare page's work for 20 long runs, and the Runs table for 1,000.

    python -m dashboard.bench                # 20 runs x 20,000 points, and 1,000 runs
    python -m dashboard.bench --steps 2000   # smaller, for a quick look
    python -m dashboard.bench --viewers      # instead: 1, 10 and 30 real browsers on one link (bench_viewers)

It seeds a temporary SQLite file through the real queue, then times, cold (no cache):
- Compare: loading the 20 runs' points, building every figure and summary table and
  serialising the figures, as the page does (each line reduced to at most charts.MAX_POINTS
  with MinMaxLTTB), next to the naive approach that plots every point;
- Runs: the table's query over 1,000 runs (each with a finished summary, series plots
  included, which is the heaviest JSON a run carries).
Targets: Compare under 1 s, the Runs table under 0.5 s, on the project's 2-core machine.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from unittest import mock

import numpy as np
from sqlalchemy.orm import Session, sessionmaker

from dashboard import bench_viewers, charts, comparison, queries
from db import queue
from db.engine import make_engine, session_factory
from db.run_config import MODES

COMPARE_STATE = {
    "x": "seconds",
    "group": "",
    "band": "minmax",
    "smooth": 0.6,
    "log": False,
    "target": 0.9,
    "baseline": "",
}
SERIES_PLOTS = {
    "instance": {key: [0.5] * 20 for key in ("inputs", "targets", "predictions")},
    "rollouts": {"zeros": [0.1] * 320, "real": [0.2] * 320},
}


def seed_long_runs(factory: sessionmaker[Session], runs: int, points_per_run: int) -> list[int]:
    """`runs` finished MNIST runs with loss and accuracy curves of points_per_run / 2 steps each."""
    steps = points_per_run // 2
    ids = []
    for index in range(runs):
        with factory.begin() as session:
            run_id = queue.enqueue(
                session,
                {"name": f"long {index}", "max_steps": steps, "seed": index, "mode": MODES[index % 2]},
            )
            queue.claim_next(session, "bench")
            points = []
            for step in range(1, steps + 1):
                seconds = step * 0.005 * (1 + index % 2)
                loss = 2.3 * math.exp(-step / 2000) + 0.05 + 0.02 * math.sin(step)
                points += [
                    queue.Point("loss", step, seconds, loss),
                    queue.Point("accuracy", step, seconds, 1 - loss / 2.4),
                ]
            queue.append_metrics(session, run_id, "bench", points)
            queue.finish(session, run_id, "bench", {"steps": steps, "test_accuracy": 0.97, "median_step_ms": 5.0})
        ids.append(run_id)
    return ids


def seed_many_runs(factory: sessionmaker[Session], runs: int) -> None:
    """`runs` finished series runs, each with a summary carrying its series plots."""
    configs = [{"name": f"run {i}", "task": "series", "max_steps": 100, "seed": i} for i in range(runs)]
    with factory.begin() as session:
        ids = queue.enqueue_many(session, configs)
    with factory.begin() as session:
        for run_id in ids:
            queue.claim_next(session, "bench")
            queue.append_metrics(session, run_id, "bench", [queue.Point("loss", 100, 1.0, 0.05)])
            queue.finish(session, run_id, "bench", {"steps": 100, "test_mse": 0.04, "series": SERIES_PLOTS})


def best_of(repeats: int, work: Callable[[], object]) -> float:
    """The median of `repeats` timings of `work`, in seconds."""
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        work()
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def compare_page(factory: sessionmaker[Session], run_ids: list[int]) -> int:
    """What the Compare page computes for these runs, up to the JSON the browser receives;
    returns the number of points plotted."""
    with factory() as session:
        runs = queries.run_infos(session, run_ids)
        points = queries.concat_points([queries.points_frame(session, run.id, run.started_at) for run in runs])
    figures = comparison.build_figures(runs, points, COMPARE_STATE)
    comparison.summaries(runs, points, COMPARE_STATE)
    for _, figure in figures:
        figure.to_json()  # what st.plotly_chart sends
    return sum(len(trace.x) for _, figure in figures for trace in figure.data)


def naive_compare_page(factory: sessionmaker[Session], run_ids: list[int]) -> int:
    """The same with no point reduction: every point of every curve goes to the browser."""
    keep_all = lambda x, y, max_points=0: np.arange(len(x))
    with mock.patch.object(charts, "downsample", keep_all):
        return compare_page(factory, run_ids)


def runs_table(factory: sessionmaker[Session]) -> int:
    """The Runs page's first page with the count of all runs, and the change token it polls."""
    with factory() as session:
        queue.change_token(session)
        return len(queries.run_page(session, {}, 0, 200).rows)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if any(arg == "--viewers" or arg.startswith("--viewers=") for arg in argv):
        return bench_viewers.main(argv)  # the load benchmark with real browsers, its own options
    parser = argparse.ArgumentParser(prog="python -m dashboard.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--viewers",
        type=int,
        nargs="*",
        metavar="N",
        help="instead, N real browsers open each link at once (default 1 10 30); see dashboard.bench_viewers "
        "for its options (--links compare2,compare20,runs, --json PATH, --idle-seconds, --timeout)",
    )
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--points", type=int, default=20_000, help="points per run (half loss, half accuracy)")
    parser.add_argument("--table-runs", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        long_factory = session_factory(make_engine(f"sqlite:///{Path(folder) / 'long.db'}"))
        many_factory = session_factory(make_engine(f"sqlite:///{Path(folder) / 'many.db'}"))
        began = time.perf_counter()
        run_ids = seed_long_runs(long_factory, args.runs, args.points)
        seed_many_runs(many_factory, args.table_runs)
        print(
            f"seeded {args.runs} runs x {args.points} points and {args.table_runs} runs "
            f"in {time.perf_counter() - began:.1f} s"
        )
        plotted = compare_page(long_factory, run_ids)
        naive_plotted = naive_compare_page(long_factory, run_ids)
        fast = best_of(args.repeats, lambda: compare_page(long_factory, run_ids))
        naive = best_of(args.repeats, lambda: naive_compare_page(long_factory, run_ids))
        table = best_of(args.repeats, lambda: runs_table(many_factory))
    print(
        f"Compare, {args.runs} runs: {fast:.3f} s ({plotted:,} points plotted); naive all-points: "
        f"{naive:.3f} s ({naive_plotted:,} points); ratio {naive / fast:.1f}x; target < 1 s: "
        f"{'met' if fast < 1 else 'MISSED'}"
    )
    print(f"Runs table, {args.table_runs} runs: {table:.3f} s; target < 0.5 s: {'met' if table < 0.5 else 'MISSED'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
