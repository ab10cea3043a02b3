"""End to end in a real headless Chromium: launch a tiny run through the UI, let the dashboard's
own worker train it, compare it, and check that user text is shown as text, not HTML.

Uses Debian's /usr/bin/chromium (never a downloaded browser). Screenshots go to the test's
tmp dir, and to $UNROLL_ARTIFACTS when set.
"""

from __future__ import annotations

import pytest

from db import queue
from db.engine import make_engine, session_factory

pytestmark = pytest.mark.slow


def test_launch_train_and_compare_in_a_real_browser(chromium, dashboard, tools, tmp_path):
    base, url, xss_run = dashboard
    _settle, _shot, XSS_NAME = tools.settle, tools.shot, tools.xss_name
    page = chromium.new_page(viewport={"width": 1400, "height": 2400})
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))

    page.goto(f"{base}/launch")
    _settle(page)
    page.get_by_label("name", exact=True).fill("e2e tiny")
    page.get_by_label("name", exact=True).press("Tab")
    for label, value in (("hidden units", "8"), ("max steps", "20"), ("batch size", "32")):
        box = page.get_by_label(label, exact=True)
        box.fill(value)
        box.press("Enter")
        _settle(page)
    _shot(page, tmp_path, "launch")
    page.get_by_role("button", name="Queue 1 run").click()
    page.get_by_text("Queued run").wait_for(timeout=30_000)
    launched = xss_run + 1

    # The Run page refreshes itself until the run ends; the dashboard's own worker trains it.
    page.goto(f"{base}/run?run={launched}")
    page.locator("[data-testid='stMetricValue']", has_text="succeeded").wait_for(timeout=240_000)
    page.locator(".js-plotly-plot").nth(3).wait_for(timeout=30_000)  # loss and accuracy, by step and by seconds
    _shot(page, tmp_path, "run")

    page.goto(f"{base}/")
    _settle(page)
    page.get_by_text("Live workers:").wait_for()
    assert "no worker is alive" not in page.content()
    # The table is a canvas: tick both rows' boxes by position (header, then 35 px rows).
    table = page.locator("[data-testid='stDataFrame']").first.bounding_box()
    for row in (0, 1):
        page.mouse.click(table["x"] + 14, table["y"] + 35 + 35 * row + 17)
        _settle(page)
    _shot(page, tmp_path, "runs")
    page.get_by_role("button", name="Compare selected").click()
    page.wait_for_url(f"**/compare?runs={launched}%2C{xss_run}", timeout=30_000)
    page.goto(page.url + "&x=seconds&smooth=0.5")
    _settle(page)
    page.locator(".js-plotly-plot").nth(2).wait_for(timeout=30_000)
    # Against seconds: steps over time, then accuracy and loss, each drawn once against the chosen x.
    assert page.locator(".js-plotly-plot").count() == 3
    titles = page.locator(".js-plotly-plot .gtitle").all_text_contents()
    assert titles[0] == "Steps over time"
    assert all(title.endswith("vs seconds since first step") for title in titles[1:])
    legend = page.locator(".js-plotly-plot .legendtext").all_text_contents()
    assert XSS_NAME in " ".join(legend) or f"#{xss_run} {XSS_NAME}" in legend
    assert page.get_by_text(f"#{xss_run} {XSS_NAME}").count() >= 1  # the run picker shows the name as text
    assert page.locator("img[src='x']").count() == 0
    assert dialogs == []
    assert "x=seconds" in page.url
    assert "smooth=0.5" in page.url
    _shot(page, tmp_path, "compare")

    with session_factory(make_engine(url))() as session:
        run = queue.get_run(session, launched)
        assert run.status.value == "succeeded"
        assert run.summary["steps"] == 20
