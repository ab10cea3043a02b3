"""The dashboard starts a real local worker when none is alive, and not otherwise."""

import time

import pytest

from dashboard import local_worker
from db import queue
from db.engine import make_engine, session_factory


@pytest.fixture
def factory(sqlite_url):
    return session_factory(make_engine(sqlite_url))


def test_no_worker_is_started_when_one_is_alive(factory, sqlite_url, monkeypatch):
    monkeypatch.delenv("UNROLL_WORKER", raising=False)
    with factory.begin() as session:
        queue.register_worker(session, "elsewhere", "host", 1)
    assert local_worker.ensure_worker(factory, sqlite_url) is None


@pytest.mark.slow
def test_a_started_worker_registers_and_stops_with_its_parent(factory, sqlite_url, monkeypatch, tmp_path):
    monkeypatch.delenv("UNROLL_WORKER", raising=False)
    monkeypatch.chdir(tmp_path)
    process = local_worker.ensure_worker(factory, sqlite_url)
    try:
        assert process is not None
        deadline = time.monotonic() + 60
        while not local_worker.has_live_worker(factory) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert local_worker.has_live_worker(factory), (tmp_path / local_worker.LOG_FILE).read_text()
        assert local_worker.ensure_worker(factory, sqlite_url) is None  # one is enough
        assert "--db" not in process.args  # the URL (and any password) stays out of `ps`
    finally:
        process.terminate()
        assert process.wait(30) == 0
    with factory() as session:
        assert queue.live_workers(session, local_worker.LIVE_WITHIN) == []


@pytest.mark.slow
def test_a_worker_is_started_once_the_one_alive_at_first_look_has_stopped(factory, sqlite_url, monkeypatch,
                                                                          tmp_path):
    monkeypatch.chdir(tmp_path)
    with factory.begin() as session:
        queue.register_worker(session, "elsewhere", "host", 1)
    keeper = local_worker.LocalWorker(recheck_seconds=0)
    assert keeper.ensure(factory, sqlite_url) is None
    with factory.begin() as session:
        queue.stop_worker(session, "elsewhere")
    process = keeper.ensure(factory, sqlite_url)
    try:
        assert process is not None and keeper.ensure(factory, sqlite_url) is process
    finally:
        process.terminate()
        process.wait(30)
