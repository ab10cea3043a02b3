"""Fixtures for the dashboard tests: the app's database (a real SQLite file), seeded runs, and the
browser and nginx the benchmarks' tests drive."""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from dashboard import bench_viewers
from db import queue
from db.engine import make_engine, session_factory

APP = str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py")


@pytest.fixture
def app_factory(sqlite_url, monkeypatch):
    """The session factory of the database the app under test reads (no worker is started)."""
    monkeypatch.setenv("UNROLL_DB_URL", sqlite_url)
    monkeypatch.setenv("UNROLL_WORKER", "off")
    engine = make_engine(sqlite_url)
    yield session_factory(engine)
    engine.dispose()


@pytest.fixture
def open_page():
    """open_page(page=None, query=None): the app run once on a page ("compare"), with a URL query."""
    return _open_page


@pytest.fixture
def seed(app_factory):
    """seed(name, **options): a finished run in the app's database (see seed_run); returns its id."""
    return lambda name, **options: seed_run(app_factory, name, **options)


def _open_page(page: str | None = None, query: dict | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=30)
    if page:
        at.run()
        at.switch_page(f"app_pages/{page}.py")
    at.query_params.update(query or {})
    return at.run()


def seed_run(
    factory,
    name: str,
    steps: int = 50,
    ms_per_step: float = 10.0,
    task: str = "mnist",
    summary: dict | None = None,
    group: str | None = None,
    **config,
) -> int:
    """A finished run with loss and accuracy (or MSE) curves, stored through the real queue."""
    with factory.begin() as session:
        run_id = queue.enqueue(session, {"name": name, "task": task, "max_steps": steps, **config}, group=group)
        queue.claim_next(session, "w")
        points = []
        for step in range(1, steps + 1):
            seconds = (step - 1) * ms_per_step / 1000
            loss = 2.3 * math.exp(-step / 15) + 0.05
            points.append(queue.Point("loss", step, seconds, loss))
            if task == "mnist":
                points.append(queue.Point("accuracy", step, seconds, 1 - loss / 2.4))
        queue.append_metrics(session, run_id, "w", points)
        figure = {"test_accuracy": 0.93} if task == "mnist" else {"test_mse": 0.04}
        queue.finish(
            session,
            run_id,
            "w",
            {
                "steps": steps,
                "median_step_ms": ms_per_step,
                "trace_seconds": 1.5,
                "parameters": 5000,
                "peak_memory_mb": 300.0,
                "data_source": "offline",
                **figure,
                **(summary or {}),
            },
        )
    return run_id


def _shown(element) -> str:
    return re.sub(r"\\(.)", r"\1", str(element.value))


@pytest.fixture
def shown():
    """shown(element): its text as the reader sees it (the markdown escapes of user text removed)."""
    return _shown


def _require(program: Path, package: str) -> None:
    """Skip without `program`, except in CI (CI=true), where it fails: a green CI must have run the test."""
    if not program.exists():
        message = f"{program} is missing (apt-get install -y {package})"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture
def chromium_present():
    _require(bench_viewers.CHROMIUM, "chromium")


@pytest.fixture
def nginx_present():
    _require(bench_viewers.NGINX, "nginx-light")
