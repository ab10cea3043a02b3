"""The Launch form in a real headless Chromium: a series run, which the form once could not launch
(its prefilled target accuracy could not be cleared and the series task refuses one)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from db import queue
from db.engine import make_engine, session_factory

pytestmark = pytest.mark.slow


def test_a_series_run_launches_from_the_form(chromium, dashboard, tools, tmp_path):
    base, url, seeded_run = dashboard
    page = chromium.new_page(viewport={"width": 1400, "height": 2400})
    page.goto(f"{base}/launch")
    tools.settle(page)
    page.locator("[data-testid='stSelectbox']", has_text="task").click()
    page.get_by_role("option", name="series", exact=True).click()
    tools.settle(page)
    expect(page.get_by_label("n steps", exact=True)).to_have_count(1)  # drawn only for the series task
    expect(page.get_by_label("target accuracy", exact=True)).to_have_count(0)  # the series task has none
    for label, value in (("name", "e2e series"), ("hidden units", "8"), ("max steps", "5")):
        box = page.get_by_label(label, exact=True)
        box.fill(value)
        box.press("Enter")
        tools.settle(page)
    tools.shot(page, tmp_path, "launch-series")
    page.get_by_role("button", name="Queue 1 run").click()
    page.get_by_text("Queued run").wait_for(timeout=30_000)

    engine = make_engine(url)
    with session_factory(engine)() as session:
        run = queue.get_run(session, seeded_run + 1)
        assert (
            run.name,
            run.config["task"],
            run.config["hidden_units"],
            run.config["max_steps"],
            run.config["target_accuracy"],
        ) == ("e2e series", "series", 8, 5, None)
    engine.dispose()
