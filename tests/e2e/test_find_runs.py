"""Tag a run on its page in a real headless Chromium, then open the filtered Runs link in a new
browser context (no session state shared): only that run is listed."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from db import queue
from db.engine import make_engine, session_factory

pytestmark = pytest.mark.slow


def _finished_run(factory, name: str) -> int:
    with factory.begin() as session:
        run_id = queue.enqueue(session, {"name": name, "max_steps": 2})
        queue.claim(session, run_id, "seeder")
        queue.append_metrics(session, run_id, "seeder", [queue.Point("loss", step, step * 0.1, 1.0) for step in (1, 2)])
        queue.finish(session, run_id, "seeder", {"steps": 2, "test_accuracy": 0.5})
    return run_id


def _rows(page) -> list[list[str]]:
    """The Runs table's rows as cell texts (the grid's accessible copy of what its canvas draws)."""
    page.locator("[data-testid='stDataFrame'] [role='gridcell']").first.wait_for(state="attached", timeout=30_000)
    rows = page.locator("[data-testid='stDataFrame'] [role='row']")
    cells = [rows.nth(index).locator("[role='gridcell']").all_text_contents() for index in range(rows.count())]
    return [row for row in cells if row]


def test_a_tagged_run_is_found_by_a_filtered_link_in_a_new_browser(chromium, dashboard, tools, tmp_path):
    base, url, _xss_run = dashboard
    engine = make_engine(url)
    factory = session_factory(engine)
    tagged = _finished_run(factory, "tag me")
    _finished_run(factory, "leave me")

    page = chromium.new_context(viewport={"width": 1400, "height": 2000}).new_page()
    page.goto(f"{base}/run?run={tagged}")
    tools.settle(page)
    page.get_by_text("Name, tags, notes and star").click()
    tags = page.get_by_label("tags", exact=True)
    tags.fill("Baseline")
    page.get_by_role("button", name="Save").click()
    page.get_by_text("name, tags, notes and star saved").wait_for(timeout=30_000)
    with factory() as session:
        assert queue.get_run(session, tagged).tag_list == ["baseline"]

    viewer = chromium.new_context(viewport={"width": 1400, "height": 1600}).new_page()
    viewer.goto(f"{base}/?tag=baseline")
    tools.settle(viewer)
    expect(viewer.get_by_text("Runs 1–1 of 1 matching the filters, newest first.")).to_be_visible(timeout=30_000)
    rows = _rows(viewer)
    tools.shot(viewer, tmp_path, "runs-tag-baseline")
    assert [row[:3] for row in rows] == [[str(tagged), "tag me", "succeeded"]]  # only the tagged run
    assert "baseline" in rows[0]
    engine.dispose()
