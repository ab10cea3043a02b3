"""Real worker processes against a real SQLite file: runs, cancels, kills and shutdowns."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from sqlalchemy import update

from db import queue
from db.engine import make_engine, session_factory
from db.models import Run, RunStatus, Worker
from db.summary import SCHEMA_VERSION
from rnncore.worker import TRANSITIONS, Outcome, RunResult, settle, worker_id
from rnncore.worker import Worker as RunWorker

pytestmark = pytest.mark.slow

TINY = {"task": "mnist", "cell": "lstm", "hidden_units": 16, "batch_size": 64, "seed": 3}
ENDLESS = {**TINY, "name": "endless", "max_steps": 1_000_000}


@pytest.fixture
def factory(sqlite_url):
    return session_factory(make_engine(sqlite_url))


@pytest.fixture
def start_worker(sqlite_url, tmp_path):
    """Start `python -m rnncore.worker` on the test database; stop whatever is left at the end."""
    started = []

    def start(*args):
        log = open(tmp_path / f"worker{len(started)}.log", "wb")  # noqa: SIM115 - the worker writes to it
        process = subprocess.Popen(
            [sys.executable, "-m", "rnncore.worker", "--db", sqlite_url, *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()


def enqueue(factory, **config):
    with factory.begin() as session:
        return queue.enqueue(session, config)


def run_row(factory, run_id) -> Run:
    with factory() as session:
        return session.get(Run, run_id)


def wait_for(condition, timeout=120.0, interval=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {condition.__doc__ or condition}")


def test_a_worker_executes_runs_end_to_end_and_fails_bad_ones_with_a_reason(factory, start_worker, tmp_path):
    static = enqueue(factory, name="static", mode="static", max_steps=25, **TINY)
    dynamic = enqueue(factory, name="dynamic", mode="dynamic", max_steps=25, **TINY)
    too_big = enqueue(factory, name="too big", max_steps=5, **{**TINY, "batch_size": 65536})
    tampered = enqueue(factory, name="tampered", max_steps=5, **TINY)
    poisoned_file = tmp_path / "nan.npz"
    np.savez(
        poisoned_file,
        x_train=np.full((128, 28, 28), np.nan, np.float32),
        y_train=np.zeros(128, np.uint8),
        x_test=np.zeros((8, 28, 28), np.float32),
        y_test=np.zeros(8, np.uint8),
    )
    diverging = enqueue(factory, name="nan", max_steps=5, data_path=str(poisoned_file), **TINY)
    with factory.begin() as session:
        config = {**run_row(factory, tampered).config, "cell": "__import__('os').system('true')"}
        session.execute(update(Run).where(Run.id == tampered).values(config=config))

    assert start_worker("--once").wait(300) == 0

    for run_id in (static, dynamic):
        run = run_row(factory, run_id)
        assert run.status == RunStatus.SUCCEEDED, run.error
        with factory() as session:
            curves = queue.load_curves(session, run_id)
        assert curves["loss"].steps == list(range(1, 26)) == curves["accuracy"].steps
        seconds = curves["loss"].seconds
        assert seconds[0] == 0.0
        assert all(b > a for a, b in zip(seconds, seconds[1:]))
        assert curves["loss"].values[-1] < curves["loss"].values[0]
        summary = run.summary
        assert summary["steps"] == 25
        assert summary["stopped_by"] == "max_steps"
        assert summary["trace_seconds"] > 0
        assert 0.0 <= summary["test_accuracy"] <= 1.0
        assert summary["data_source"]
        assert summary["test_examples"] > 0
    assert run_row(factory, static).summary["test_accuracy"] > 0.2  # chance is 0.1
    with factory() as session:
        typed = queue.run_summary(session, static)
    assert typed.schema_version == SCHEMA_VERSION
    assert typed.steps == 25
    assert typed.model_extra == {}

    failed = run_row(factory, too_big)
    assert failed.status == RunStatus.FAILED
    assert "batch_size 65536 is larger than the training set" in failed.error
    assert f"run {too_big} failed" in failed.log_tail  # the worker's log lines travel with the run
    diverged = run_row(factory, diverging)
    assert diverged.status == RunStatus.FAILED
    assert diverged.error == "diverged at step 1: the loss is not finite"
    with factory() as session:
        assert queue.load_curves(session, diverging)["loss"].steps == [1]
    refused = run_row(factory, tampered)
    assert refused.status == RunStatus.FAILED
    assert refused.error.startswith("the stored config is invalid: cell")


def test_cancel_stops_training_within_2_s_and_sigterm_hands_the_run_back(factory, start_worker):
    worker = start_worker("--heartbeat", "0.5", "--poll", "0.2")
    first = enqueue(factory, **ENDLESS)
    wait_for(lambda: (run_row(factory, first).progress_step or 0) >= 5)
    with factory.begin() as session:
        queue.request_cancel(session, first)
    asked = time.monotonic()
    wait_for(lambda: run_row(factory, first).status == RunStatus.CANCELLED, timeout=10)
    assert time.monotonic() - asked < 2.0
    cancelled = run_row(factory, first)
    assert cancelled.summary["stopped_by"] == "cancelled"
    assert cancelled.summary["steps"] >= 5

    second = enqueue(factory, **ENDLESS)
    wait_for(lambda: (run_row(factory, second).progress_step or 0) >= 3)
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(30) == 0
    handed_back = run_row(factory, second)
    assert handed_back.status == RunStatus.QUEUED
    assert handed_back.worker_id is None
    with factory() as session:
        assert all(w.stopped_at is not None for w in session.query(Worker))


def test_a_killed_worker_is_reaped_and_its_points_are_kept(factory, start_worker):
    run_id = enqueue(factory, **ENDLESS)
    victim = start_worker("--heartbeat", "0.3", "--stale-after", "2")
    wait_for(lambda: (run_row(factory, run_id).progress_step or 0) >= 10)
    victim.send_signal(signal.SIGKILL)
    victim.wait(10)
    with factory() as session:
        written = len(queue.load_curves(session, run_id)["loss"].steps)
    assert written >= 10
    assert run_row(factory, run_id).status == RunStatus.RUNNING  # nobody knows yet

    time.sleep(2.5)  # let the heartbeat go stale
    assert start_worker("--stale-after", "2", "--heartbeat", "0.5", "--once").wait(120) == 0
    reaped = run_row(factory, run_id)
    assert reaped.status == RunStatus.FAILED
    assert reaped.error.startswith(queue.WORKER_LOST)
    with factory() as session:
        assert len(queue.load_curves(session, run_id)["loss"].steps) == written


def test_a_killed_workers_run_is_failed_on_time_while_the_other_worker_is_busy(factory, start_worker):
    """Reaping rides on the heartbeat: a busy worker never goes back to its claim loop, yet it
    must fail a lost run within stale-after plus a few seconds."""
    busy_run = enqueue(factory, **ENDLESS)
    start_worker("--heartbeat", "0.5", "--stale-after", "5")
    wait_for(lambda: (run_row(factory, busy_run).progress_step or 0) >= 3)
    lost_run = enqueue(factory, **ENDLESS)
    victim = start_worker("--heartbeat", "0.5", "--stale-after", "5")
    wait_for(lambda: (run_row(factory, lost_run).progress_step or 0) >= 3)
    victim.send_signal(signal.SIGKILL)
    victim.wait(10)
    killed = time.monotonic()
    wait_for(lambda: run_row(factory, lost_run).status == RunStatus.FAILED, timeout=30)
    assert time.monotonic() - killed < 5 + 5
    assert run_row(factory, lost_run).error.startswith(queue.WORKER_LOST)
    assert run_row(factory, busy_run).status == RunStatus.RUNNING  # still busy: it reaped from its heartbeat


def test_a_database_that_cannot_be_opened_is_one_line_and_verbose_adds_the_traceback(tmp_path):
    """Checked before TensorFlow is imported, so this is quick despite the module's slow mark."""
    url = "postgresql+psycopg://bob:s3cret@127.0.0.1:1/unroll"  # nothing listens on port 1
    command = [sys.executable, "-m", "rnncore.worker", "--db", url, "--once"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "s3cret" not in result.stderr
    assert result.stderr.strip() == (
        "python -m rnncore.worker: error: cannot open the database at postgresql+psycopg://bob:***@127.0.0.1:1/unroll: "
        "nothing accepts connections at that host and port (is the server running?)"
    )
    verbose = subprocess.run([*command, "--verbose"], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert verbose.returncode == 2
    assert "Traceback" in verbose.stderr
    assert "Connection refused" in verbose.stderr
    assert verbose.stderr.strip().splitlines()[-1] == result.stderr.strip()
    assert "s3cret" not in verbose.stderr


def claimed(factory, worker, **config):
    run_id = enqueue(factory, **{**TINY, "max_steps": 5, **config})
    with factory.begin() as session:
        return queue.claim(session, run_id, worker.id)


def test_each_outcome_is_recorded_by_its_one_transition(sqlite_url, factory):
    """In process, no training: every outcome but LOST has a transition, and settle applies it."""
    assert set(TRANSITIONS) == set(Outcome) - {Outcome.LOST}
    worker = RunWorker(sqlite_url)
    summary = {"schema_version": 1, "steps": 3, "stopped_by": "cancelled"}
    expected = {
        Outcome.SUCCEEDED: RunStatus.SUCCEEDED,
        Outcome.FAILED: RunStatus.FAILED,
        Outcome.CANCELLED: RunStatus.CANCELLED,
        Outcome.RELEASED: RunStatus.QUEUED,
        Outcome.LOST: RunStatus.RUNNING,
    }  # lost: no longer ours, left as it is
    for outcome, status in expected.items():
        run = claimed(factory, worker, name=outcome.value)
        error = "boom" if outcome is Outcome.FAILED else None
        settle(factory, run.id, worker.id, False, RunResult(outcome, summary, error), "a line")
        row = run_row(factory, run.id)
        assert row.status == status, outcome
        stored = summary if outcome in (Outcome.SUCCEEDED, Outcome.FAILED, Outcome.CANCELLED) else None
        assert row.summary == stored, outcome
        assert (row.error, row.log_tail) == (("boom", "a line") if outcome is Outcome.FAILED else (None, None))
    taken_away = claimed(factory, worker, name="taken away")
    # the recorder saw the run reaped or deleted: whatever the outcome, nothing is recorded
    settle(factory, taken_away.id, worker.id, True, RunResult(Outcome.SUCCEEDED, summary))
    assert run_row(factory, taken_away.id).status == RunStatus.RUNNING


def test_execute_returns_the_outcome_as_a_plain_string(sqlite_url, factory):
    """A run whose stored config is refused fails before TensorFlow is imported: quick."""
    worker = RunWorker(sqlite_url)
    run = claimed(factory, worker, name="tampered")
    run.config = {**run.config, "cell": "nope"}
    outcome = worker.execute(run)
    assert outcome == "failed"
    assert type(outcome) is str
    failed = run_row(factory, run.id)
    assert failed.status == RunStatus.FAILED
    assert failed.error.startswith("the stored config is invalid: cell")
    assert failed.summary is None


def test_a_worker_on_a_host_with_a_long_name_can_register_and_claim_as_a_ray_owner(engine):
    """Ids are cut to fit the 64-character columns (PostgreSQL enforces them), "/N" claim owners included."""
    factory = session_factory(engine)
    host = "a-very-long-host-name." + "x" * 200 + ".example.org"
    worker = worker_id(host, 4_194_304)
    owner = f"{worker}/99999"
    assert len(owner) <= 64
    assert worker != worker_id(host, 4_194_304)  # unique per process even on one host and pid
    with factory.begin() as session:
        run_id = queue.enqueue(session, {"name": "long host", "max_steps": 1})
    with factory.begin() as session:
        queue.register_worker(session, worker, host, 4_194_304)
        assert queue.claim_next(session, owner).id == run_id
    with factory() as session:
        assert session.get(Run, run_id).worker_id == owner
