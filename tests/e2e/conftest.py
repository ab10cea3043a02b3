"""Shared pieces of the real-browser tests: Debian's Chromium, a dashboard on a fresh SQLite
file (its own worker autostarts), and helpers to wait for Streamlit and take screenshots.

Uses /usr/bin/chromium (never a downloaded browser). Screenshots go to the test's tmp dir,
and to $UNROLL_ARTIFACTS when set.
"""

from __future__ import annotations

import math
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from db import queue
from db.engine import make_engine, session_factory
from db.models import Worker

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
APP = Path(__file__).resolve().parents[2] / "dashboard" / "app.py"
XSS_NAME = "<img src=x onerror=alert(1)>"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_healthy(base: str, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"streamlit exited with {process.returncode}")
        try:
            with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise AssertionError("streamlit did not become healthy")


def _seed_xss_run(url: str) -> int:
    """A finished run whose name is an HTML payload, with curves to draw."""
    engine = make_engine(url)
    factory = session_factory(engine)
    with factory.begin() as session:
        run_id = queue.enqueue(session, {"name": XSS_NAME, "max_steps": 30, "mode": "dynamic"})
        queue.claim_next(session, "seeder")
        queue.append_metrics(
            session,
            run_id,
            "seeder",
            [
                point
                for step in range(1, 31)
                for point in (
                    queue.Point("loss", step, step * 0.02, 2.3 * math.exp(-step / 10)),
                    queue.Point("accuracy", step, step * 0.02, 1 - math.exp(-step / 10)),
                )
            ],
        )
        queue.finish(session, run_id, "seeder", {"steps": 30, "median_step_ms": 20.0, "test_accuracy": 0.5})
    engine.dispose()
    return run_id


@pytest.fixture
def chromium():
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing (apt-get install -y chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def dashboard_env():
    """Extra environment for the dashboard under test (a test module may override this fixture)."""
    return {}


@pytest.fixture
def dashboard(tmp_path, dashboard_env):
    """`streamlit run dashboard/app.py` on a free port and a fresh SQLite file; its worker autostarts."""
    url = f"sqlite:///{tmp_path / 'unroll.db'}"
    xss_run = _seed_xss_run(url)
    port = _free_port()
    env = {**os.environ, "UNROLL_DB_URL": url, "UNROLL_WORKER": "on", **dashboard_env}
    log = open(tmp_path / "streamlit.log", "wb")  # noqa: SIM115 - open while the server runs, closed below
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            str(APP),
            "--server.headless",
            "true",
            "--server.port",
            str(port),
            "--server.address",
            "127.0.0.1",
            "--browser.gatherUsageStats",
            "false",
            "--server.fileWatcherType",
            "none",
            "--client.toolbarMode",
            "viewer",
        ],
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(base, process)
        yield base, url, xss_run
    finally:
        process.terminate()  # the worker watches its parent's pid and exits too
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
        _wait_for_workers_to_exit(url)


def _wait_for_workers_to_exit(url: str, timeout: float = 30) -> None:
    """The dashboard's worker exits with its parent: check its process is gone."""
    engine = make_engine(url)
    with session_factory(engine)() as session:
        pids = [worker.pid for worker in session.scalars(select(Worker))]
    engine.dispose()
    deadline = time.monotonic() + timeout
    while pids and time.monotonic() < deadline:
        pids = [pid for pid in pids if _alive(pid)]
        time.sleep(0.3)
    assert not pids, f"worker processes {pids} outlived the dashboard"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _shot(page, tmp_path: Path, name: str) -> None:
    page.wait_for_timeout(1500)  # let Plotly finish drawing
    path = tmp_path / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    if os.environ.get("UNROLL_ARTIFACTS"):
        target = Path(os.environ["UNROLL_ARTIFACTS"])
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, target / path.name)


def _settle(page) -> None:
    """Wait until Streamlit has finished the current script run."""
    page.wait_for_selector("[data-testid='stApp'][data-test-script-state='notRunning']", timeout=60_000)


@pytest.fixture
def tools():
    """settle(page), shot(page, tmp_path, name) and the XSS run's name, for the tests."""
    return SimpleNamespace(settle=_settle, shot=_shot, xss_name=XSS_NAME)
