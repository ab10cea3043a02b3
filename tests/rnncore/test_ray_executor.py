"""The Ray executor on real Ray: a local cluster of three 1-CPU nodes (one shared by the
PostgreSQL tests of this module), and a `--ray local` Ray against SQLite.

The executor is always the real command, `python -m rnncore.worker --ray ADDRESS`, in a
subprocess of its own: a driver of the cluster like any user's. The cluster's node processes
inherit this process's environment (offline MNIST, quiet TensorFlow; see tests/conftest.py).
"""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
import ray
from ray.autoscaler._private.constants import AUTOSCALER_RESOURCE_REQUEST_CHANNEL
from ray.cluster_utils import Cluster
from ray.experimental.internal_kv import _internal_kv_get
from sqlalchemy.engine import make_url

from db import queue
from db.engine import make_engine, session_factory
from db.models import Run, RunStatus
from rnncore.ray_executor import (
    CANCEL_GRACE_SECONDS,
    NODE_KEY,
    RayExecutor,
    cancel_grace_seconds,
    check_address,
    run_resources,
)
from rnncore.worker import ClaimedRun

NODES = 3
TINY = {"task": "mnist", "cell": "gru", "mode": "dynamic", "hidden_units": 4, "batch_size": 16, "max_steps": 3}
ENDLESS = {**TINY, "max_steps": 1_000_000}
# Trace-bound: a static unroll of 1,000 steps takes many seconds to build before its first step,
# so training cannot look at a cancel request until long after it was made.
STUCK_IN_TRACE = {
    "task": "series",
    "cell": "lstm",
    "mode": "static",
    "hidden_units": 8,
    "batch_size": 8,
    "n_steps": 1000,
    "max_steps": 5,
}
PASSWORD = "ray-s3cret-9f1c"  # PostgreSQL here trusts 127.0.0.1, so any password connects: it only has to travel
# Quick heartbeats; a staleness limit loose enough that a live run starved of CPU on a loaded
# 2-core machine is not reaped (the dead dispatcher's test reaps with its own, shorter limit).
FAST = ["--heartbeat", "0.5", "--stale-after", "10", "--poll", "0.2"]


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster():
    """Three nodes of 1 CPU each (the head is one of them), shared by the PostgreSQL tests."""
    local = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    for _ in range(NODES - 1):
        local.add_node(num_cpus=1)
    local.wait_for_nodes()
    yield local
    local.shutdown()


@pytest.fixture
def pg_url(pg_schema_url):
    """The test schema's URL with a password in it, from no rows."""
    url = make_url(pg_schema_url).set(password=PASSWORD).render_as_string(hide_password=False)
    engine = make_engine(url)
    with engine.begin() as connection:
        connection.exec_driver_sql("TRUNCATE metric_points, runs, workers RESTART IDENTITY CASCADE")
    engine.dispose()
    return url


@pytest.fixture
def start_executor(tmp_path):
    """Start `python -m rnncore.worker --ray ...`; kill whatever is left at the end. Its output
    goes to a file, returned with the process."""
    started = []

    def start(*args, db=None):
        """`db`, a URL with a password, goes in UNROLL_DB_URL: the executor refuses it on its command line."""
        log_path = tmp_path / f"executor{len(started)}.log"
        process = subprocess.Popen(
            [sys.executable, "-m", "rnncore.worker", *args],
            stdout=open(log_path, "wb"),  # noqa: SIM115 - the executor writes to it
            stderr=subprocess.STDOUT,
            env={**os.environ, "RAY_DEDUP_LOGS": "0", **({"UNROLL_DB_URL": db} if db else {})},
        )
        started.append(process)
        return process, log_path

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()


def factory_for(url):
    return session_factory(make_engine(url))


def enqueue(factory, configs):
    with factory.begin() as session:
        return queue.enqueue_many(session, configs)


def rows(factory, run_ids) -> dict[int, Run]:
    with factory() as session:
        return {run.id: run for run in session.query(Run).where(Run.id.in_(run_ids))}


def row(factory, run_id) -> Run:
    return rows(factory, [run_id])[run_id]


def loss_steps(factory, run_id) -> list[int]:
    with factory() as session:
        curves = queue.load_curves(session, run_id)
    return curves["loss"].steps if "loss" in curves else []


def wait_for(condition, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def node_ids(cluster) -> set[str]:
    return {node.node_id for node in cluster.list_all_nodes()}


# --- quick: the options, no cluster -------------------------------------------------------------


def test_a_bad_address_or_resource_is_refused_naming_what_is_allowed():
    assert check_address("ray://head.example:10001") == "ray://head.example:10001"
    assert check_address("10.0.0.5:6379") == "10.0.0.5:6379"
    for bad in ("", "head", "http://head:8265", "ray://head", "head:99999"):
        with pytest.raises(ValueError, match="--ray must be auto, local, ray://HOST:PORT"):
            check_address(bad)
    assert run_resources(environ={}).cpus == 1.0
    assert run_resources(environ={"UNROLL_RAY_CPUS_PER_RUN": "2", "UNROLL_RAY_GPUS_PER_RUN": "1"}).gpus == 1.0
    with pytest.raises(ValueError, match="UNROLL_RAY_CPUS_PER_RUN must be a number, not 'two'"):
        run_resources(environ={"UNROLL_RAY_CPUS_PER_RUN": "two"})
    with pytest.raises(ValueError, match="--cpus-per-run must be a positive number of CPUs"):
        run_resources(cpus=0, environ={})
    with pytest.raises(ValueError, match="--gpus-per-run must be 0"):
        run_resources(gpus=-1, environ={})


def test_the_worker_command_refuses_bad_ray_options_in_one_line(tmp_path):
    command = [sys.executable, "-m", "rnncore.worker", "--db", f"sqlite:///{tmp_path / 'u.db'}"]
    cases = {
        ("--ray", "nowhere"): "--ray must be auto, local, ray://HOST:PORT (Ray Client) or HOST:PORT",
        ("--ray", "local", "--slots", "0"): "--slots must be at least 1 (runs at once on the cluster), not 0",
        ("--slots", "2"): "--slots only apply with --ray ADDRESS",
        ("--ray", "local", "--cpus-per-run", "-1"): "--cpus-per-run must be a positive number of CPUs",
        ("--ray", "127.0.0.1:1"): "error: cannot join the Ray cluster at '127.0.0.1:1': nothing accepts connections",
    }
    for options, message in cases.items():
        result = subprocess.run([*command, *options], capture_output=True, text=True, timeout=120)
        assert result.returncode == 2, options
        assert message in result.stderr, (options, result.stderr)
    with_password = [*command, "--ray", "local", "--db", f"postgresql+psycopg://u:{PASSWORD}@127.0.0.1:5432/test"]
    result = subprocess.run(with_password, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "--db: with --ray, give a URL that holds a password through UNROLL_DB_URL" in result.stderr
    assert PASSWORD not in result.stderr


# --- on the shared cluster, PostgreSQL ----------------------------------------------------------


@pytest.mark.slow
def test_twelve_runs_spread_over_the_nodes_each_claimed_once_and_the_password_stays_secret(
    cluster, pg_url, start_executor
):
    factory = factory_for(pg_url)
    run_ids = enqueue(factory, [{**TINY, "name": f"tiny {i}", "seed": i} for i in range(12)])
    executor, log_path = start_executor("--ray", cluster.address, "--once", *FAST, db=pg_url)
    assert executor.wait(300) == 0, log_path.read_text()

    final = rows(factory, run_ids)
    assert all(run.status == RunStatus.SUCCEEDED for run in final.values()), {i: r.error for i, r in final.items()}
    assert all(run.attempts == 1 for run in final.values()), "a run was claimed twice"
    assert len({run.worker_id for run in final.values()}) == 12, "each claim has an owner of its own"
    assert all(loss_steps(factory, run_id) == [1, 2, 3] for run_id in run_ids)
    trained_on = {run.summary[NODE_KEY] for run in final.values()}
    assert trained_on <= node_ids(cluster)
    assert len(trained_on) > 1, "Ray placed every run on one node"

    # The URL reached every task (they all wrote), yet its password is in no Ray log.
    assert PASSWORD not in log_path.read_text()
    session_logs = Path(cluster.head_node.get_session_dir_path()) / "logs"
    logged = [path for path in session_logs.rglob("*") if path.is_file()]
    assert logged, "the cluster wrote no logs to look in"
    assert [path.name for path in logged if PASSWORD.encode() in path.read_bytes()] == []


@pytest.mark.slow
def test_a_tasks_arguments_hold_the_urls_reference_not_its_password(cluster, pg_url):
    executor = RayExecutor(pg_url, address=cluster.address)
    executor.join_ray()
    try:
        arguments = executor.task_arguments(ClaimedRun(1, "tiny", TINY), f"{executor.id}/1")
        assert PASSWORD not in repr(arguments)
        assert PASSWORD.encode() not in pickle.dumps(arguments)  # as Ray ships them to the node
        assert ray.get(arguments[2]) == pg_url  # what the task reads, from the object store
    finally:
        ray.shutdown()


@pytest.mark.slow
def test_a_cancel_reaches_a_run_on_ray_within_2_s(cluster, pg_url, start_executor):
    factory = factory_for(pg_url)
    [run_id] = enqueue(factory, [{**ENDLESS, "name": "endless"}])
    start_executor("--ray", cluster.address, *FAST, db=pg_url)
    wait_for(lambda: (row(factory, run_id).progress_step or 0) >= 5, 180, "the run to train")
    with factory.begin() as session:
        queue.request_cancel(session, run_id)
    asked = time.monotonic()
    wait_for(lambda: row(factory, run_id).status == RunStatus.CANCELLED, 10, "the cancel")
    assert time.monotonic() - asked < 2.0
    cancelled = row(factory, run_id)
    assert cancelled.summary["stopped_by"] == "cancelled"  # the task stopped itself, with its summary
    assert cancelled.summary[NODE_KEY] in node_ids(cluster)


@pytest.mark.slow
def test_a_task_deaf_to_a_cancel_is_cancelled_by_ray_within_2_s(cluster, pg_url, start_executor):
    """Tracing a 1,000-step static graph, training cannot see the request: ray.cancel ends it."""
    factory = factory_for(pg_url)
    [run_id] = enqueue(factory, [{**STUCK_IN_TRACE, "name": "stuck in its trace"}])
    start_executor("--ray", cluster.address, *FAST, db=pg_url)
    wait_for(lambda: row(factory, run_id).status == RunStatus.RUNNING, 60, "the claim")
    # Long enough for the task's process to import TensorFlow (a cancel seen before the trace
    # begins stops the run cooperatively), far shorter than the trace itself (over a minute).
    time.sleep(10)
    assert row(factory, run_id).progress_step is None, "the trace ended before the cancel: it proves nothing"
    with factory.begin() as session:
        queue.request_cancel(session, run_id)
    asked = time.monotonic()
    wait_for(lambda: row(factory, run_id).status == RunStatus.CANCELLED, 10, "the cancel")
    assert time.monotonic() - asked < 2.0
    assert row(factory, run_id).summary is None  # recorded by the dispatcher, not by the killed task


@pytest.mark.slow
def test_sigterm_stops_the_executor_and_hands_its_runs_back(cluster, pg_url, start_executor):
    factory = factory_for(pg_url)
    [run_id] = enqueue(factory, [{**ENDLESS, "name": "handed back"}])
    executor, log_path = start_executor("--ray", cluster.address, *FAST, db=pg_url)
    wait_for(lambda: (row(factory, run_id).progress_step or 0) >= 3, 180, "the run to train")
    executor.send_signal(signal.SIGTERM)
    assert executor.wait(60) == 0, log_path.read_text()
    handed_back = row(factory, run_id)
    assert handed_back.status == RunStatus.QUEUED
    assert handed_back.worker_id is None
    assert loss_steps(factory, run_id) == []  # it starts over, as from a worker


@pytest.mark.slow
def test_a_dead_dispatchers_runs_stop_and_are_reaped(cluster, pg_url, start_executor):
    factory = factory_for(pg_url)
    [run_id] = enqueue(factory, [{**ENDLESS, "name": "orphan"}])
    dispatcher, _ = start_executor("--ray", cluster.address, *FAST, db=pg_url)
    wait_for(lambda: (row(factory, run_id).progress_step or 0) >= 5, 180, "the run to train")
    dispatcher.send_signal(signal.SIGKILL)
    dispatcher.wait(10)
    time.sleep(3)
    stopped_at = row(factory, run_id).progress_step
    time.sleep(2)
    assert row(factory, run_id).progress_step == stopped_at, "Ray did not end the dead driver's task"
    with factory.begin() as session:
        reaped = queue.reap(session, timedelta(seconds=3))
    assert reaped == [run_id]
    assert row(factory, run_id).error.startswith(queue.WORKER_LOST)
    assert loss_steps(factory, run_id)[-1] >= 5  # its points are kept


def autoscaler_request(cluster) -> list[dict]:
    """The resource shapes the cluster's autoscaler was last asked for (Ray keeps them in its GCS)."""
    ray.init(address=cluster.address, logging_level="WARNING")
    try:
        stored = _internal_kv_get(AUTOSCALER_RESOURCE_REQUEST_CHANNEL)
    finally:
        ray.shutdown()
    return json.loads(stored) if stored else []


@pytest.mark.slow
def test_runs_beyond_what_the_cluster_holds_stay_queued_and_the_autoscaler_is_asked_for_them(
    cluster, pg_url, start_executor
):
    factory = factory_for(pg_url)
    run_ids = enqueue(factory, [{**ENDLESS, "name": f"endless {i}", "seed": i} for i in range(NODES + 2)])
    start_executor("--ray", cluster.address, *FAST, db=pg_url)

    def statuses():
        return Counter(run.status for run in rows(factory, run_ids).values())

    wait_for(lambda: statuses()[RunStatus.RUNNING] == NODES, 180, "the cluster to fill")
    time.sleep(2)  # a dispatcher that claims more than Ray can start would have done so by now
    assert statuses() == {RunStatus.RUNNING: NODES, RunStatus.QUEUED: 2}
    wait_for(lambda: autoscaler_request(cluster) == [{"CPU": 1.0}] * (NODES + 2), 15, "the request")

    with factory.begin() as session:
        for run_id in run_ids:
            queue.request_cancel(session, run_id)
    wait_for(lambda: statuses() == {RunStatus.CANCELLED: NODES + 2}, 30, "every run to be cancelled")
    wait_for(lambda: autoscaler_request(cluster) == [], 15, "the request to be withdrawn")


@pytest.mark.slow
def test_a_removed_nodes_run_fails_as_worker_lost_within_seconds_and_the_others_finish(cluster, pg_url, start_executor):
    """Last in the module: it takes a node away from the shared cluster."""
    factory = factory_for(pg_url)
    medium = {**TINY, "max_steps": 3000}
    run_ids = enqueue(factory, [{**medium, "name": f"medium {i}", "seed": i} for i in range(NODES)])
    start_executor("--ray", cluster.address, *FAST, db=pg_url)
    # One CPU per node and per run: the three runs are on three different nodes.
    wait_for(lambda: all((run.progress_step or 0) >= 5 for run in rows(factory, run_ids).values()), 180, "all to train")
    victim = cluster.list_all_nodes()[-1]  # not the head
    cluster.remove_node(victim)
    removed = time.monotonic()

    def one_lost():
        return [run for run in rows(factory, run_ids).values() if run.status == RunStatus.FAILED]

    wait_for(lambda: one_lost(), 30, "the lost run to fail")
    seconds = time.monotonic() - removed
    [lost] = one_lost()
    assert seconds < 5, f"the run failed {seconds:.1f} s after its node went, not within seconds"
    assert lost.error.startswith(queue.WORKER_LOST)
    assert victim.node_id[:8] in lost.error or "NodeDiedError" in lost.error, lost.error
    assert len(loss_steps(factory, lost.id)) >= 5  # its points are kept
    others = [run_id for run_id in run_ids if run_id != lost.id]
    wait_for(
        lambda: all(run.status == RunStatus.SUCCEEDED for run in rows(factory, others).values()), 300, "the others"
    )
    assert all(run.summary[NODE_KEY] != victim.node_id for run in rows(factory, others).values())


# --- one machine, SQLite ------------------------------------------------------------------------


@pytest.mark.slow
def test_the_executor_on_a_local_ray_against_sqlite(tmp_path, start_executor, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a relative SQLite path: the tasks must find the same file
    factory = factory_for(f"sqlite:///{tmp_path / 'unroll.db'}")
    run_ids = enqueue(factory, [{**TINY, "name": f"tiny {i}", "seed": i} for i in range(4)])
    executor, log_path = start_executor("--ray", "local", "--slots", "2", "--db", "sqlite:///unroll.db", "--once")
    assert executor.wait(300) == 0, log_path.read_text()
    final = rows(factory, run_ids)
    assert all(run.status == RunStatus.SUCCEEDED for run in final.values()), {i: r.error for i, r in final.items()}
    assert all(loss_steps(factory, run_id) == [1, 2, 3] for run_id in run_ids)
    assert len({run.summary[NODE_KEY] for run in final.values()}) == 1  # one machine, one node


# --- the benchmark's command --------------------------------------------------------------------


@pytest.mark.slow
def test_the_ray_benchmark_compares_workers_and_ray_on_the_same_runs(tmp_path):
    command = [sys.executable, "-m", "rnncore.bench", "--ray"]
    refused = subprocess.run([*command, "--ray-nodes", "0,2"], capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2
    assert "--ray-nodes takes node counts from 1 to 8, comma separated (e.g. 1,2,3), not '0,2'" in refused.stderr

    report = tmp_path / "bench.json"
    small = [*command, "--ray-runs", "3", "--ray-nodes", "1", "--json", str(report)]
    result = subprocess.run(small, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = {row["label"]: row for row in json.loads(report.read_text())["ray"]["rows"]}
    assert set(rows) == {"1 hand-started worker", "Ray, 1 node"}
    assert all(row["runs"] == 3 and row["runs_per_minute"] > 0 for row in rows.values())
    assert all(0 < row["claim_to_first_point_median"] <= row["claim_to_first_point_max"] for row in rows.values())
    assert "Ray, 1 node: Ray adds" in result.stdout


def test_a_run_of_long_steps_is_given_two_steps_to_stop_before_ray_cancel():
    assert cancel_grace_seconds(steps_taken=0, seconds_in_flight=60) == CANCEL_GRACE_SECONDS  # deaf: building
    assert cancel_grace_seconds(steps_taken=100, seconds_in_flight=10) == CANCEL_GRACE_SECONDS  # 0.1 s steps
    assert cancel_grace_seconds(steps_taken=10, seconds_in_flight=30) == pytest.approx(6.0)  # 3 s steps
