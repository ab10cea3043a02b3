"""Dashboard at scale: the Compare page's work for 20 long runs, the Runs table for 1,000, and the
Runs page's data for 10,000 runs under filters.

    python -m dashboard.bench                # 20 runs x 20,000 points, 1,000 runs, 10,000 runs filtered
    python -m dashboard.bench --points 2000 --filter-runs 2000   # smaller, for a quick look
    python -m dashboard.bench --viewers      # instead: 1, 10 and 30 real browsers on one link (bench_viewers)
    python -m dashboard.bench --browser      # instead: seconds to every chart drawn in Chromium (bench_browser)

It seeds a temporary SQLite file through the real queue, then times, cold (no cache):
- Compare: loading the 20 runs' points, building every figure and summary table and
  serialising the figures, as the page does (each line reduced to at most charts.MAX_POINTS
  with MinMaxLTTB), next to the naive approach that plots every point; and what a live view
  redoes when one of its runs records a point (figures and tables from cached points);
- Runs: the table's query over 1,000 runs (each with a finished summary, series plots
  included, which is the heaviest JSON a run carries);
- Runs, found: what the Runs page reads for a filtered, sorted link over 10,000 such runs
  (config fields, a tag, the star, a text search; sorted by a summary figure): the change
  token, the filter choices (tags and groups as stored) and one page with the count of all
  matching runs.
Targets: Compare under 1 s, the Runs table and the filtered Runs page under 0.5 s each, on the
project's 2-core machine.
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
from typing import Any
from unittest import mock

import numpy as np
import pandas as pd
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from dashboard import bench_viewers, charts, comparison, queries
from db import queue
from db.engine import make_engine, session_factory
from db.models import Run, RunStatus, utcnow
from db.run_config import CELLS, MODES

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


# A link someone shares to find runs: three config fields, a tag, a word of the notes, by test MSE.
FOUND_FILTERS = {"cell": ["gru", "lstm"], "hidden_units": [64], "learning_rate": [queries.Range(0.001, 0.01)]}
FOUND_VIEWS: dict[str, tuple[dict[str, Any], str]] = {
    "config fields, tag, search; by test MSE": ({**FOUND_FILTERS, "tag": ["baseline"], "q": "seed"}, "test_mse"),
    "starred, by elapsed": ({"starred": True}, "elapsed"),
    "search only, newest first": ({"q": "run 99"}, "id"),
}


def seed_findable_runs(factory: sessionmaker[Session], runs: int) -> None:
    """`runs` finished series runs with varied configs, every 10th tagged "baseline" and noted,
    every 50th starred. Finished in one UPDATE (the Runs page never reads their points)."""
    configs = [
        {
            "name": f"run {i}",
            "task": "series",
            "max_steps": 100,
            "seed": i,
            "cell": CELLS[i % len(CELLS)],
            "hidden_units": (32, 64, 128)[i % 3],
            "learning_rate": (0.001, 0.005, 0.01, 0.05)[i % 4],
        }
        for i in range(runs)
    ]
    with factory.begin() as session:
        ids = queue.enqueue_many(session, configs, group="bench")
        session.execute(
            update(Run).values(
                status=RunStatus.SUCCEEDED,
                started_at=utcnow(),
                finished_at=utcnow(),
                progress_step=100,
                latest={"loss": 0.05},
                summary={"steps": 100, "test_mse": 0.04, "data_source": "series", "series": SERIES_PLOTS},
            )
        )
        for index, run_id in enumerate(ids):
            if index % 10 == 0 or index % 50 == 0:
                tags = ["baseline", f"seed-{index % 7}"] if index % 10 == 0 else None
                queue.annotate(session, run_id, tags=tags, notes=f"seed sweep {index}", starred=index % 50 == 0)


def runs_found(factory: sessionmaker[Session], filters: dict, sort: str) -> int:
    """What the Runs page reads for a filtered link: the token, the filter choices, one page."""
    with factory() as session:
        queue.change_token(session)
        queries.filter_options(session)
        page = queries.run_page(session, filters, 0, 200, sort=sort)
        return page.total


def time_found(factory: sessionmaker[Session], filters: dict[str, Any], sort: str, repeats: int) -> tuple[int, float]:
    """(runs matching, median seconds) of the Runs page's reads for one filtered link."""
    return runs_found(factory, filters, sort), best_of(repeats, lambda: runs_found(factory, filters, sort))


def best_of(repeats: int, work: Callable[[], object]) -> float:
    """The median of `repeats` timings of `work`, in seconds."""
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        work()
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def runs_and_points(factory: sessionmaker[Session], run_ids: list[int]) -> tuple[list[queries.RunInfo], pd.DataFrame]:
    """The runs and their long points table, read as the Compare page reads them."""
    with factory() as session:
        runs = queries.run_infos(session, run_ids)
        return runs, queries.concat_points([queries.points_frame(session, run.id, run.started_at) for run in runs])


def compare_page(factory: sessionmaker[Session], run_ids: list[int]) -> int:
    """What the Compare page computes for these runs, up to the JSON the browser receives;
    returns the number of points plotted."""
    runs, points = runs_and_points(factory, run_ids)
    figures = comparison.build_figures(runs, points, COMPARE_STATE)
    comparison.summaries(runs, points, COMPARE_STATE)
    for _, figure in figures:
        figure.to_json()  # what st.plotly_chart sends
    return sum(len(trace.x) for _, figure in figures for trace in figure.data)


def live_rebuild(factory: sessionmaker[Session], run_ids: list[int]) -> Callable[[], object]:
    """What a live Compare view redoes when one of its runs records a point: its figures and
    tables, from points already in memory (dashboard.state caches them per run and progress)."""
    runs, points = runs_and_points(factory, run_ids)
    return lambda: comparison.compare(runs, points, COMPARE_STATE)


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
    if "--browser" in argv:
        from dashboard import bench_browser  # imports this module's seed helpers

        return bench_browser.main(argv)  # time to every chart drawn in Chromium, its own options
    parser = argparse.ArgumentParser(prog="python -m dashboard.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--viewers",
        type=int,
        nargs="*",
        metavar="N",
        help="instead, N real browsers open each link at once (default 1 10 30); see dashboard.bench_viewers "
        "for its options (--links compare2,compare20,runs, --json PATH, --idle-seconds, --timeout)",
    )
    parser.add_argument(
        "--browser",
        action="store_true",
        help="instead, seconds until every chart is drawn in Chromium, cold and warm; see dashboard.bench_browser "
        "for its options (--compare-runs, --points, --table-runs, --repeats, --json PATH)",
    )
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--points", type=int, default=20_000, help="points per run (half loss, half accuracy)")
    parser.add_argument("--table-runs", type=int, default=1000)
    parser.add_argument("--filter-runs", type=int, default=10_000, help="runs in the store the filters search")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        long_factory = session_factory(make_engine(f"sqlite:///{Path(folder) / 'long.db'}"))
        many_factory = session_factory(make_engine(f"sqlite:///{Path(folder) / 'many.db'}"))
        found_factory = session_factory(make_engine(f"sqlite:///{Path(folder) / 'found.db'}"))
        began = time.perf_counter()
        run_ids = seed_long_runs(long_factory, args.runs, args.points)
        seed_many_runs(many_factory, args.table_runs)
        seed_findable_runs(found_factory, args.filter_runs)
        print(
            f"seeded {args.runs} runs x {args.points} points, {args.table_runs} runs and {args.filter_runs} runs "
            f"in {time.perf_counter() - began:.1f} s"
        )
        plotted = compare_page(long_factory, run_ids)
        naive_plotted = naive_compare_page(long_factory, run_ids)
        fast = best_of(args.repeats, lambda: compare_page(long_factory, run_ids))
        naive = best_of(args.repeats, lambda: naive_compare_page(long_factory, run_ids))
        rebuild = best_of(args.repeats, live_rebuild(long_factory, run_ids))
        table = best_of(args.repeats, lambda: runs_table(many_factory))
        found = {
            label: time_found(found_factory, filters, sort, args.repeats)
            for label, (filters, sort) in FOUND_VIEWS.items()
        }
    print(
        f"Compare, {args.runs} runs: {fast:.3f} s ({plotted:,} points plotted); naive all-points: "
        f"{naive:.3f} s ({naive_plotted:,} points); ratio {naive / fast:.1f}x; target < 1 s: "
        f"{'met' if fast < 1 else 'MISSED'}"
    )
    print(
        f"Compare, {args.runs} runs, rebuilt from cached points (a live view, when one of its runs records): "
        f"{rebuild:.3f} s"
    )
    print(f"Runs table, {args.table_runs} runs: {table:.3f} s; target < 0.5 s: {'met' if table < 0.5 else 'MISSED'}")
    for label, (matching, seconds) in found.items():
        print(
            f"Runs page data, {args.filter_runs:,} runs, {label} ({matching:,} match): {seconds:.3f} s; "
            f"target < 0.5 s: {'met' if seconds < 0.5 else 'MISSED'}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
