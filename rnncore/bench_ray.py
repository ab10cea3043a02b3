"""Benchmark: what running the queue on Ray costs next to hand-started workers (issue 11).

    python -m rnncore.bench --ray [--ray-runs 40] [--ray-nodes 1,2,3] [--db postgresql+psycopg://...]

The same tiny runs (GRU, 4 units, batch 16, 3 steps: the run itself is next to nothing, so
what is left is the machinery) are executed by today's hand-started workers (`python -m
rnncore.worker --once`, 1, 2 and 3 processes) and by the Ray executor on local Ray clusters
of 1, 2 and 3 nodes of 1 CPU each (`ray.cluster_utils.Cluster`), each from a fresh database.
All share this machine's cores, so more nodes show the overhead, not a speed-up.

Reported per configuration: runs per minute, from the first claim to the last finish (the
cluster's and the workers' start-up are not counted: a real cluster is up already); and
seconds from a run's claim to its first point (step 1, graph building included, written),
median, p90 and max. A hand-started worker imports TensorFlow before it claims, a Ray worker
process in its first task, so the max on Ray carries that import (once per node). "Ray adds"
is the difference of the medians, Ray with N nodes against N workers.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass

from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from db import queue
from db.engine import make_engine, masked_url, session_factory
from db.models import MetricPoint, Run, RunStatus

TINY = {"task": "mnist", "cell": "gru", "mode": "dynamic", "hidden_units": 4, "batch_size": 16, "max_steps": 3}
RUN_TIMEOUT_SECONDS = 1800


@dataclass(frozen=True)
class Measurement:
    """One configuration's figures over its runs."""

    label: str
    parallel: int  # Ray nodes, or worker processes
    runs: int
    runs_per_minute: float
    claim_to_first_point_median: float
    claim_to_first_point_p90: float
    claim_to_first_point_max: float


@contextlib.contextmanager
def scratch_database(url: str | None) -> Iterator[str]:
    """A fresh, empty database for one configuration: a SQLite file in a temporary folder, or
    (for a PostgreSQL URL) a schema of its own on that server, dropped afterwards."""
    if url is None or make_url(url).get_backend_name() == "sqlite":
        with tempfile.TemporaryDirectory(prefix="unroll-bench-ray-") as folder:
            yield f"sqlite:///{folder}/bench.db"
        return
    schema = f"unroll_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(url)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield (
            make_url(url)
            .update_query_dict({"options": f"-csearch_path={schema}"})
            .render_as_string(hide_password=False)
        )
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def enqueue_tiny_runs(url: str, count: int) -> list[int]:
    engine = make_engine(url)
    with session_factory(engine).begin() as session:
        run_ids = queue.enqueue_many(session, [{**TINY, "name": f"bench {i}", "seed": i} for i in range(count)])
    engine.dispose()
    return run_ids


def measure(url: str, run_ids: list[int], label: str, parallel: int) -> Measurement:
    """Read the figures back from the store; every run must have succeeded, or there is nothing to compare."""
    engine = make_engine(url)
    with engine.connect() as connection:
        runs = connection.execute(
            select(Run.id, Run.status, Run.started_at, Run.finished_at, Run.error).where(Run.id.in_(run_ids))
        ).all()
        first_points = dict(
            connection.execute(
                select(MetricPoint.run_id, func.min(MetricPoint.wall))
                .where(MetricPoint.run_id.in_(run_ids), MetricPoint.step == 1)
                .group_by(MetricPoint.run_id)
            ).all()
        )
    engine.dispose()
    failed = [
        f"run {run.id}: {run.status.value} {run.error or ''}" for run in runs if run.status is not RunStatus.SUCCEEDED
    ]
    if failed or len(runs) != len(run_ids):
        raise RuntimeError(f"{label}: not every run succeeded: " + "; ".join(failed))
    span = max(run.finished_at for run in runs) - min(run.started_at for run in runs)
    delays = sorted(first_points[run.id] - run.started_at.timestamp() for run in runs)
    return Measurement(
        label=label,
        parallel=parallel,
        runs=len(runs),
        runs_per_minute=len(runs) / (span.total_seconds() / 60),
        claim_to_first_point_median=statistics.median(delays),
        claim_to_first_point_p90=delays[round(0.9 * (len(delays) - 1))],
        claim_to_first_point_max=delays[-1],
    )


def on_hand_started_workers(url: str, count: int, runs: int) -> Measurement:
    """`count` workers started as the README says, each leaving when the queue is empty."""
    run_ids = enqueue_tiny_runs(url, runs)
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "rnncore.worker", "--db", url, "--once", "--poll", "0.2"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(count)
    ]
    for worker in workers:
        if worker.wait(RUN_TIMEOUT_SECONDS) != 0:
            raise RuntimeError(f"a worker exited with {worker.returncode}")
    return measure(url, run_ids, f"{count} hand-started worker{'s' if count > 1 else ''}", count)


def on_ray_cluster(url: str, nodes: int, runs: int) -> Measurement:
    """The Ray executor (in this process, as its driver) on a local cluster of `nodes` 1-CPU nodes."""
    from ray.cluster_utils import Cluster

    from rnncore.ray_executor import RayExecutor

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    try:
        for _ in range(nodes - 1):
            cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        run_ids = enqueue_tiny_runs(url, runs)
        RayExecutor(url, address=cluster.address, poll_seconds=0.2).serve(once=True)
    finally:
        cluster.shutdown()
    return measure(url, run_ids, f"Ray, {nodes} node{'s' if nodes > 1 else ''}", nodes)


def run_ray_benchmark(runs: int, nodes: list[int], db: str | None, log: Callable[[str], None] = print) -> dict:
    """Every configuration, hand-started workers first, each from a fresh database."""
    os.environ.setdefault("UNROLL_MNIST_DOWNLOAD", "off")  # a benchmark does not wait on the network
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    plans = [(on_hand_started_workers, count) for count in nodes] + [(on_ray_cluster, count) for count in nodes]
    rows = []
    for execute, parallel in plans:
        with scratch_database(db) as url:
            row = execute(url, parallel, runs)
        log(f"{row.label}: {row.runs_per_minute:.1f} runs per minute")
        rows.append(row)
    database = "SQLite (a temporary file)" if db is None else masked_url(db)
    return {
        "runs": runs,
        "config": TINY,
        "database": database,
        "cores": os.cpu_count(),
        "rows": [asdict(row) for row in rows],
    }


def format_ray_benchmark(result: dict) -> str:
    rows = result["rows"]
    lines = [
        f"{result['runs']} tiny runs (gru, 4 units, batch 16, 3 steps) per configuration on {result['database']}, "
        f"{result['cores']} cores",
        f"{'executor':<24} {'runs/min':>9} {'claim to first point, s: median':>32} {'p90':>6} {'max':>6}",
    ]
    for row in rows:
        lines.append(
            f"{row['label']:<24} {row['runs_per_minute']:>9.1f} {row['claim_to_first_point_median']:>32.2f} "
            f"{row['claim_to_first_point_p90']:>6.2f} {row['claim_to_first_point_max']:>6.2f}"
        )
    workers = {row["parallel"]: row for row in rows if not row["label"].startswith("Ray")}
    for row in rows:
        peer = workers.get(row["parallel"])
        if row["label"].startswith("Ray") and peer is not None:
            added = row["claim_to_first_point_median"] - peer["claim_to_first_point_median"]
            ratio = row["runs_per_minute"] / peer["runs_per_minute"]
            lines.append(
                f"{row['label']}: Ray adds {added:+.2f} s per run from claim to first point; "
                f"{ratio:.2f}x the runs per minute of {peer['label']}"
            )
    return "\n".join(lines)
