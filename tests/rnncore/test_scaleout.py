"""Scale-out on PostgreSQL: 4 real workers, 40 runs, one worker killed mid-run."""

import signal
import subprocess
import sys
import time

import pytest

from db import queue
from db.engine import make_engine, session_factory
from db.models import Run, RunStatus

pytestmark = pytest.mark.slow

WORKERS, RUNS = 4, 40
# Seconds without a heartbeat before a run counts as lost: short, so the killed worker's run is reaped
# soon, but not so short that a live worker starved of CPU on a loaded 2-core machine loses its runs.
STALE_AFTER = 8
TINY = {"task": "mnist", "cell": "gru", "mode": "dynamic", "hidden_units": 4, "batch_size": 16, "max_steps": 3}


@pytest.fixture
def pg_factory(pg_schema_url):
    engine = make_engine(pg_schema_url)
    with engine.begin() as connection:
        connection.exec_driver_sql("TRUNCATE metric_points, runs, workers RESTART IDENTITY CASCADE")
    yield session_factory(engine)
    engine.dispose()


def start_workers(url, count, log_dir):
    return [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "rnncore.worker",
                "--db",
                url,
                "--heartbeat",
                "0.5",
                "--stale-after",
                str(STALE_AFTER),
                "--poll",
                "0.2",
            ],
            stdout=open(log_dir / f"worker{i}.log", "wb"),
            stderr=subprocess.STDOUT,
        )
        for i in range(count)
    ]


def runs(factory):
    with factory() as session:
        return {run.id: run for run in session.query(Run)}


def every_tiny_run_succeeded(factory, tiny):
    """Whether all tiny runs succeeded; a tiny run that ended otherwise fails the test at once, with its error."""
    current = runs(factory)
    ended_badly = {i: current[i].error for i in tiny if current[i].status in (RunStatus.FAILED, RunStatus.CANCELLED)}
    assert not ended_badly, f"tiny runs that did not succeed: {ended_badly}"
    return all(current[i].status == RunStatus.SUCCEEDED for i in tiny)


def wait_until(condition, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s")


def test_four_workers_finish_40_runs_once_each_and_a_killed_workers_run_is_reaped(pg_factory, pg_schema_url, tmp_path):
    with pg_factory.begin() as session:
        [long_run] = queue.enqueue_many(session, [{**TINY, "name": "long", "max_steps": 1_000_000}])
        tiny = queue.enqueue_many(session, [{**TINY, "name": f"tiny {i}", "seed": i} for i in range(RUNS)])
    workers = start_workers(pg_schema_url, WORKERS, tmp_path)
    try:
        wait_until(lambda: (runs(pg_factory)[long_run].progress_step or 0) >= 5, timeout=120)
        holder = runs(pg_factory)[long_run].worker_id
        victim = next(w for w in workers if f"-{w.pid}-" in holder)
        with pg_factory() as session:
            written = len(queue.load_curves(session, long_run)["loss"].steps)
        victim.send_signal(signal.SIGKILL)

        wait_until(
            lambda: (
                every_tiny_run_succeeded(pg_factory, tiny) and runs(pg_factory)[long_run].status == RunStatus.FAILED
            ),
            timeout=600,
        )
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
        for worker in workers:
            worker.wait(60)

    final = runs(pg_factory)
    assert all(final[i].attempts == 1 for i in tiny), "a run was claimed twice"
    assert {final[i].worker_id for i in tiny} - {holder}, "the surviving workers did the work"
    lost = final[long_run]
    assert lost.error.startswith(queue.WORKER_LOST)
    with pg_factory() as session:
        assert len(queue.load_curves(session, long_run)["loss"].steps) >= written
        for run_id in tiny:
            assert queue.load_curves(session, run_id)["loss"].steps == [1, 2, 3]
    started = min(final[i].started_at for i in tiny)
    finished = max(final[i].finished_at for i in tiny)
    minutes = (finished - started).total_seconds() / 60
    print(f"\n{RUNS} tiny runs on {WORKERS} workers (one killed): {RUNS / minutes:.1f} runs per minute")
