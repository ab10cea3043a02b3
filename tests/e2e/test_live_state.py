"""What a Runs tab shows is what is true now, in a real Chromium, with no reload:
(a) a run queued by another process while the tab sits idle appears and is trained by the
dashboard's own worker; (b) a worker killed outright (as the OOM killer does) has its run
failed as "worker lost" by the dashboard within stale-after + 5 s, and a new local worker
takes the next queued run."""

from __future__ import annotations

import os
import signal
import time

import pytest
from sqlalchemy import select

from db import queue
from db.engine import make_engine, session_factory
from db.models import Run, Worker

pytestmark = pytest.mark.slow

STALE_AFTER = 6
TINY = {"max_steps": 20, "hidden_units": 8, "batch_size": 32, "mode": "dynamic"}
ENDLESS = {"name": "endless", "max_steps": 1_000_000, "hidden_units": 8, "batch_size": 32}


@pytest.fixture
def dashboard_env():
    return {"UNROLL_STALE_AFTER": str(STALE_AFTER)}


def _statuses(page) -> dict[str, str]:
    """{run id: status} as the table shows it (the grid keeps an accessible copy of the cells it draws)."""
    rows = page.locator("[data-testid='stDataFrame'] [role='row']")
    cells = [rows.nth(index).locator("[role='gridcell']").all_text_contents() for index in range(rows.count())]
    return {row[0]: row[2] for row in cells if len(row) > 2}


def _wait_shown(page, run_id: int, status: str | None, timeout: float) -> float:
    """Seconds until the table shows the run with `status` (None: with any status), polling the
    page (never reloading it)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        shown = _statuses(page).get(str(run_id))
        if shown is not None and status in (None, shown):
            return time.monotonic() - started
        page.wait_for_timeout(250)
    page.screenshot(path="/tmp/e2e-failure.png", full_page=True)
    raise AssertionError(f"run {run_id} not shown as {status} within {timeout} s; table: {_statuses(page)}")


def _enqueue(url: str, config: dict) -> int:
    engine = make_engine(url)
    with session_factory(engine).begin() as session:
        run_id = queue.enqueue(session, config)
    engine.dispose()
    return run_id


def _worker_of(url: str, run_id: int) -> int:
    engine = make_engine(url)
    with session_factory(engine)() as session:
        worker_id = session.get(Run, run_id).worker_id
        pid = session.scalar(select(Worker.pid).where(Worker.id == worker_id))
    engine.dispose()
    return pid


def test_an_idle_runs_tab_shows_a_run_queued_elsewhere_and_its_end(chromium, dashboard, tools, tmp_path):
    base, url, _ = dashboard
    page = chromium.new_page(viewport={"width": 1400, "height": 1400})
    page.goto(base)
    tools.settle(page)
    page.get_by_text("Live workers:").wait_for()
    page.wait_for_timeout(3000)  # idle: nothing queued or running
    run_id = _enqueue(url, {"name": "from elsewhere", **TINY})
    assert _wait_shown(page, run_id, None, 15) < 5
    _wait_shown(page, run_id, "succeeded", 240)
    tools.shot(page, tmp_path, "runs-live")


def test_a_sigkilled_workers_run_fails_on_time_and_a_new_local_worker_takes_the_next(
    chromium, dashboard, tools, tmp_path
):
    base, url, _ = dashboard
    page = chromium.new_page(viewport={"width": 1400, "height": 1400})
    page.goto(base)
    tools.settle(page)
    doomed = _enqueue(url, ENDLESS)
    _wait_shown(page, doomed, "running", 120)
    victim = _worker_of(url, doomed)
    following = _enqueue(url, {"name": "after the kill", **TINY})
    os.kill(victim, signal.SIGKILL)
    killed = time.monotonic()
    _wait_shown(page, doomed, "failed", STALE_AFTER + 30)
    assert time.monotonic() - killed < STALE_AFTER + 5
    page.get_by_text("exited with code -9").wait_for(timeout=10_000)
    _wait_shown(page, following, "succeeded", 240)
    assert _worker_of(url, following) != victim
    tools.shot(page, tmp_path, "runs-after-kill")
