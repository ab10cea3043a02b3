"""The dashboard starts a real local worker when none is alive, not otherwise, and starts
another when its own dies."""

import signal
import time

import pytest

from dashboard import local_worker
from db import queue
from db.engine import make_engine, session_factory


@pytest.fixture
def factory(sqlite_url):
    return session_factory(make_engine(sqlite_url))


@pytest.fixture
def keeper(monkeypatch, tmp_path):
    """A LocalWorker that rechecks at once; whatever it started is stopped at the end."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("UNROLL_WORKER", raising=False)
    keeper = local_worker.LocalWorker(recheck_seconds=0)
    yield keeper
    if keeper.process is not None and keeper.process.poll() is None:
        keeper.process.terminate()
        keeper.process.wait(30)


def wait_until(condition, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.2)
    return condition()


def test_no_worker_is_started_when_one_is_alive(factory, sqlite_url, keeper):
    with factory.begin() as session:
        queue.register_worker(session, "elsewhere", "host", 1)
    assert keeper.ensure(factory, sqlite_url) is None
    assert keeper.state(factory) == local_worker.WorkerState(starting=False, notice=None)


@pytest.mark.slow
def test_a_started_worker_says_starting_then_registers_and_stops_with_its_parent(factory, sqlite_url, keeper, tmp_path):
    process = keeper.ensure(factory, sqlite_url)
    assert process is not None
    assert keeper.state(factory).starting  # TensorFlow loads before the worker registers
    assert wait_until(lambda: local_worker.has_live_worker(factory)), (tmp_path / local_worker.LOG_FILE).read_text()
    assert not keeper.state(factory).starting
    assert keeper.ensure(factory, sqlite_url) is process  # one is enough
    assert "--db" not in process.args  # the URL (and any password) stays out of `ps`
    process.terminate()
    assert process.wait(30) == 0
    with factory() as session:
        assert queue.live_workers(session, local_worker.LIVE_WITHIN) == []


@pytest.mark.slow
def test_a_killed_local_worker_is_restarted_after_a_back_off_with_a_notice(factory, sqlite_url, keeper):
    first = keeper.ensure(factory, sqlite_url)
    assert wait_until(lambda: local_worker.has_live_worker(factory))
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    # Its last heartbeat still looks recent, but it is ours and dead: that is no reason to wait.
    assert keeper.ensure(factory, sqlite_url) is None  # the back-off comes first
    assert f"pid {first.pid}" in keeper.state(factory).notice
    assert "code -9" in keeper.state(factory).notice
    assert wait_until(lambda: keeper.ensure(factory, sqlite_url) is not None, timeout=10)
    assert keeper.process.pid != first.pid
    assert keeper.backoff == 2 * local_worker.FIRST_BACKOFF_SECONDS


@pytest.mark.slow
def test_a_worker_is_started_once_the_one_alive_at_first_look_has_stopped(factory, sqlite_url, keeper):
    with factory.begin() as session:
        queue.register_worker(session, "elsewhere", "host", 1)
    assert keeper.ensure(factory, sqlite_url) is None
    with factory.begin() as session:
        queue.stop_worker(session, "elsewhere")
    process = keeper.ensure(factory, sqlite_url)
    assert process is not None
    assert keeper.ensure(factory, sqlite_url) is process
