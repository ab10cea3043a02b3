"""One Compare link open in two browser sessions while a run trains: both show every chart, and a
new point reaches both within the refresh interval, although they share one cached comparison."""

from __future__ import annotations

import time

import pytest

from db import queue
from db.engine import make_engine, session_factory

pytestmark = pytest.mark.slow

REFRESH_SECONDS = 2


def _steps_shown(page) -> list[str]:
    """The "steps" cells of the Compare page's per-run summary table (its accessible copy)."""
    table = page.locator("[data-testid='stDataFrame']").first
    headers = table.locator("[role='columnheader']").all_text_contents()
    if "steps" not in headers:
        return []
    column = headers.index("steps")
    rows = table.locator("[role='row']")
    cells = [rows.nth(index).locator("[role='gridcell']").all_text_contents() for index in range(rows.count())]
    return [row[column] for row in cells if len(row) > column]


def wait_for_steps(page, expected: list[str], within: float) -> None:
    """Poll the page's table until it shows `expected`; fail with what it shows after `within` seconds."""
    deadline = time.monotonic() + within
    while (shown := _steps_shown(page)) != expected:
        assert time.monotonic() < deadline, f"stale view: {shown}, expected {expected}"
        page.wait_for_timeout(200)


def test_a_new_point_reaches_every_viewer_of_a_shared_link_within_the_interval(chromium, dashboard, tools):
    base, url, _ = dashboard
    engine = make_engine(url)
    factory = session_factory(engine)
    with factory.begin() as session:  # a run "training" in another process: claimed, 10 points so far
        run_id = queue.enqueue(session, {"name": "live", "max_steps": 1000, "mode": "dynamic"})
        queue.claim(session, run_id, "trainer")
        queue.append_metrics(
            session, run_id, "trainer", [queue.Point("loss", step, step * 0.1, 1 / step) for step in range(1, 11)]
        )
    viewers = [chromium.new_context(viewport={"width": 1400, "height": 1600}).new_page() for _ in range(2)]
    for page in viewers:
        page.goto(f"{base}/compare?runs={run_id}")
    for page in viewers:
        page.locator(".js-plotly-plot").first.wait_for(timeout=60_000)
        page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot .main-svg').length > 0")
        page.locator("[data-testid='stDataFrame']").first.wait_for(timeout=30_000)
        wait_for_steps(page, ["10"], within=30)  # the table draws its cells after its frame

    with factory.begin() as session:
        queue.append_metrics(
            session, run_id, "trainer", [queue.Point("loss", step, step * 0.1, 1 / step) for step in range(11, 21)]
        )
    written = time.monotonic()
    for page in viewers:
        wait_for_steps(page, ["20"], within=REFRESH_SECONDS + 4 - (time.monotonic() - written))
    engine.dispose()
