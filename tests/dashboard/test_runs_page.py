"""The Runs page through Streamlit's AppTest, on a real SQLite file: what it lists, how it
pages and filters thousands of runs, what it says about workers, and the run actions."""

import re
from datetime import timedelta

from sqlalchemy import select, text, update

from db import queue
from db.models import Run, RunStatus, utcnow


def stored_runs(factory):
    with factory() as session:
        return session.scalars(select(Run).order_by(Run.id)).all()


def select_rows(at, rows):
    """Select table rows as a click would (the table's key changes with its rows)."""
    at.session_state[at.session_state["runs_table_key"]] = {"selection": {"rows": rows, "columns": []}}
    at.run()


def test_the_runs_page_lists_runs_and_warns_when_no_worker_is_alive(app_factory, open_page):
    with app_factory.begin() as session:
        queue.enqueue(session, {"name": "waiting <b>bold</b>", "max_steps": 3})
    at = open_page()
    assert not at.exception
    table = at.dataframe[0].value
    assert list(table["name"]) == ["waiting <b>bold</b>"]
    assert list(table["status"]) == ["queued"]
    assert "no worker is alive" in at.warning[0].value


def test_the_runs_page_filters_and_shows_progress_errors_and_each_test_figure_apart(app_factory, open_page, seed):
    finished = seed("done", steps=20, cell="gru")
    series = seed("series", steps=20, task="series")
    with app_factory.begin() as session:
        failing = queue.enqueue(session, {"name": "broken", "max_steps": 40})
        queue.claim_next(session, "w")
        queue.append_metrics(session, failing, "w", [queue.Point("loss", 10, 0.1, 1.0)])
        queue.fail(session, failing, "w", "Traceback\nValueError: out of memory")
    at = open_page()
    table = at.dataframe[0].value
    assert list(table["id"]) == [failing, series, finished]
    assert list(table["progress"]) == [0.25, 1.0, 1.0]
    assert table["error"][0] == "Traceback"
    # Accuracy and MSE are different measures: never one "final" column.
    assert list(table["test accuracy"].isna()) == [True, True, False]
    assert table["test accuracy"][2] == 0.93
    assert table["test MSE"][1] == 0.04
    assert "final" not in table
    select_rows(at, [0])
    assert "ValueError: out of memory" in at.code[0].value
    at.multiselect(key="filter_status").set_value(["failed"]).run()
    assert list(at.dataframe[0].value["id"]) == [failing]
    assert "ValueError: out of memory" in at.code[0].value  # the selection survives the new rows
    at.multiselect(key="filter_cell").set_value(["gru"]).run()
    assert "No runs match" in at.info[0].value
    at.multiselect(key="filter_status").set_value([]).run()
    at.multiselect(key="filter_task").set_value(["mnist"]).run()
    assert list(at.dataframe[0].value["id"]) == [finished]


def test_two_thousand_runs_are_all_reachable_page_by_page(app_factory, open_page):
    with app_factory.begin() as session:
        ids = queue.enqueue_many(
            session, [{"name": f"r{i}", "max_steps": 1, "cell": "gru" if i % 2 else "lstm"} for i in range(2000)]
        )
    at = open_page()
    assert not at.exception
    assert any(caption.value.startswith("Runs 1–200 of 2,000,") for caption in at.caption)
    assert list(at.dataframe[0].value["id"])[:2] == [ids[-1], ids[-2]]
    at.number_input(key="runs_page").set_value(10).run()
    assert at.dataframe[0].value["id"].iloc[-1] == ids[0]  # the oldest run is on the last page
    at.multiselect(key="filter_cell").set_value(["gru"]).run()  # filtered in the database, counted in full
    assert any("of 1,000 matching" in caption.value for caption in at.caption)
    assert at.session_state["runs_page"] == 5  # page 10 no longer exists: the last one is shown


def test_a_run_whose_worker_went_silent_is_failed_by_the_dashboard_itself(app_factory, open_page, monkeypatch):
    """No worker is alive to reap it: whoever watches must, or it shows "running" forever."""
    monkeypatch.setenv("UNROLL_STALE_AFTER", "20")
    with app_factory.begin() as session:
        lost, quiet = queue.enqueue_many(session, [{"name": "lost", "max_steps": 9}, {"name": "quiet", "max_steps": 9}])
        queue.claim_next(session, "killed")
        queue.claim_next(session, "slow")
        session.execute(update(Run).where(Run.id == lost).values(heartbeat_at=utcnow() - timedelta(seconds=25)))
        session.execute(update(Run).where(Run.id == quiet).values(heartbeat_at=utcnow() - timedelta(seconds=12)))
    at = open_page()
    assert not at.exception
    statuses = dict(zip(at.dataframe[0].value["id"], at.dataframe[0].value["status"]))
    assert statuses == {lost: "failed", quiet: "running"}
    assert stored_runs(app_factory)[0].error.startswith(queue.WORKER_LOST)
    # 12 s when set, a little more by the time the page reads it on a busy machine
    assert any(re.search(rf"Run {quiet} has sent no heartbeat for 1[2-9] s", warning.value) for warning in at.warning)


def test_actions_cancel_run_again_retry_and_delete_with_confirmations(app_factory, open_page, seed, shown):
    done = seed("done")
    with app_factory.begin() as session:
        first, second = queue.enqueue_many(session, [{"name": "a", "max_steps": 3}, {"name": "b", "max_steps": 3}])
    at = open_page()
    select_rows(at, [0, 1])  # newest first: b, a
    at.button(key="cancel_runs").click().run()
    assert not at.exception
    assert len(at.success) == 2
    assert [run.status for run in stored_runs(app_factory)] == [RunStatus.SUCCEEDED] + [RunStatus.CANCELLED] * 2

    select_rows(at, [1])  # a
    at.button(key="retry_runs").click().run()
    assert "deleted and they run again" in at.warning[-1].value
    assert stored_runs(app_factory)[1].status == RunStatus.CANCELLED  # nothing before the yes
    at.button(key="confirm_retry_yes").click().run()
    assert stored_runs(app_factory)[1].status == RunStatus.QUEUED

    select_rows(at, [2])  # the succeeded run: retry refuses, run again makes a new run
    at.button(key="retry_runs").click().run()
    at.button(key="confirm_retry_yes").click().run()
    assert f"cannot retry: run {done} is succeeded" in shown(at.error[0])
    at.button(key="rerun_runs").click().run()
    runs = stored_runs(app_factory)
    assert (runs[-1].rerun_of, runs[-1].status, runs[0].status) == (done, RunStatus.QUEUED, RunStatus.SUCCEEDED)
    assert f"queued again as run {runs[-1].id}" in at.success[0].value

    select_rows(at, [1])  # b (the new run is row 0)
    at.button(key="delete_runs").click().run()
    assert "cannot be undone" in at.warning[-1].value
    assert len(stored_runs(app_factory)) == 4
    at.button(key="confirm_delete_yes").click().run()
    assert second not in [run.id for run in stored_runs(app_factory)]


def test_compare_selected_opens_compare_with_those_runs(app_factory, open_page, seed):
    a, b = seed("a"), seed("b")
    at = open_page()
    select_rows(at, [0, 1])
    at.button(key="compare_selected").click().run()
    assert not at.exception
    assert at.multiselect(key="cmp_runs").value == [b, a]  # newest first, as in the table
    assert at.query_params["runs"] == f"{b},{a}"


def test_a_database_gone_away_mid_session_is_one_sentence_and_the_next_tick_tries_again(app_factory, open_page):
    with app_factory.begin() as session:
        queue.enqueue(session, {"name": "r", "max_steps": 3})
    at = open_page()
    with app_factory.begin() as session:  # as if the store were restored from an old backup mid-session
        session.execute(text("ALTER TABLE runs RENAME TO runs_elsewhere"))
    at.run()
    assert not at.exception
    assert any("cannot read the database at sqlite" in warning.value for warning in at.warning)
    with app_factory.begin() as session:
        session.execute(text("ALTER TABLE runs_elsewhere RENAME TO runs"))
    at.run()
    assert not at.exception
    assert list(at.dataframe[0].value["name"]) == ["r"]


# --- finding runs: filters and sort in the URL -------------------------------------------


def annotated_runs(factory, seed):
    """A starred, tagged baseline (LSTM 64), a GRU and a series run."""
    baseline = seed("lstm baseline", hidden_units=64, summary={"test_accuracy": 0.95})
    gru = seed("gru try", cell="gru", group="sweep, 1", summary={"test_accuracy": 0.91})
    series = seed("series run", task="series")
    with factory.begin() as session:
        queue.annotate(session, baseline, tags=["baseline", "e1"], notes="The reference", starred=True)
        queue.annotate(session, gru, tags=["e1"])
    return baseline, gru, series


def ids_shown(at):
    return list(at.dataframe[0].value["id"])


def test_a_filtered_link_shows_only_its_runs_and_the_widgets_write_the_url(app_factory, open_page, seed):
    baseline, gru, series = annotated_runs(app_factory, seed)
    at = open_page(None, {"tag": "baseline"})
    assert not at.exception
    assert ids_shown(at) == [baseline]
    table = at.dataframe[0].value
    assert (table["name"][0], list(table["tags"][0]), table["starred"][0]) == (
        "lstm baseline",
        ["baseline", "e1"],
        True,
    )
    assert at.multiselect(key="filter_tag").value == ["baseline"]
    assert any(caption.value == "Runs 1–1 of 1 matching the filters, newest first." for caption in at.caption)

    at.multiselect(key="filter_tag").set_value(["e1"]).run()
    assert ids_shown(at) == [gru, baseline]
    at.selectbox(key="filter_sort").set_value("test_accuracy").run()
    at.radio(key="filter_order").set_value("asc").run()
    assert ids_shown(at) == [gru, baseline]
    assert at.query_params == {"tag": "e1", "sort": "test_accuracy", "order": "asc"}
    at.text_input(key="filter_hidden_units").set_value("64, 128").run()  # a config field, in "More filters"
    assert ids_shown(at) == [baseline]
    assert at.query_params["hidden_units"] == "64,128"
    at.multiselect(key="filter_tag").set_value([]).run()
    at.text_input(key="filter_hidden_units").set_value("").run()
    at.text_input(key="filter_q").set_value("series").run()  # the search: name, group, tags, notes
    assert ids_shown(at) == [series]
    at.text_input(key="filter_q").set_value("").run()
    at.checkbox(key="filter_starred").check().run()
    assert ids_shown(at) == [baseline]
    assert at.query_params == {"starred": "1", "sort": "test_accuracy", "order": "asc"}


def test_a_link_round_trips_groups_with_commas_config_fields_and_the_sort(app_factory, open_page, seed):
    baseline, gru, series = annotated_runs(app_factory, seed)
    link = {"group": ["sweep, 1"], "cell": "gru,lstm", "q": "TRY", "sort": "name", "order": "asc"}
    at = open_page(None, link)
    assert not at.exception
    assert ids_shown(at) == [gru]
    assert at.multiselect(key="filter_group").value == ["sweep, 1"]
    assert at.query_params == {"group": "sweep, 1", **{key: value for key, value in link.items() if key != "group"}}
    again = open_page(None, at.query_params)  # the address as copied, in a new session
    assert ids_shown(again) == [gru]
    assert not again.warning
    everything = open_page(None, {"sort": "name", "order": "asc"})
    assert ids_shown(everything) == [gru, baseline, series]
    assert any("by name, ascending" in caption.value for caption in everything.caption)


def test_a_link_with_unreadable_values_says_what_it_left_out_and_shows_the_rest(app_factory, open_page, seed, shown):
    baseline, gru, series = annotated_runs(app_factory, seed)
    at = open_page(None, {"cell": "transformer,gru", "hidden_units": "abc", "colour": "red", "sort": "size"})
    assert not at.exception
    assert ids_shown(at) == [gru]  # what was readable is kept
    text = shown(at.warning[0])
    assert "cell: 'transformer' is not one of rnn, lstm, gru, sru" in text
    assert "hidden_units: 'abc' is not a whole number" in text
    assert "'colour' is not a setting of this page" in text
    assert "sort: 'size' is not a column or config field to sort by" in text
    assert at.query_params == {"cell": "gru"}  # the address now says what is shown
    at.text_input(key="filter_learning_rate").set_value("fast").run()  # typed text is checked the same way
    assert "learning_rate: 'fast' is not a number or a range like 0.001..0.01" in shown(at.warning[0])
    assert ids_shown(at) == [gru]


def test_a_tag_no_run_has_yet_keeps_its_filter_and_matches_nothing(app_factory, open_page, seed):
    annotated_runs(app_factory, seed)
    at = open_page(None, {"tag": "later"})
    assert not at.exception
    assert at.multiselect(key="filter_tag").value == ["later"]
    assert "No runs match the filters." in at.info[0].value


def test_a_read_only_dashboard_finds_runs_too(app_factory, open_page, seed, monkeypatch):
    monkeypatch.setenv("UNROLL_READONLY", "1")
    baseline, _gru, _series = annotated_runs(app_factory, seed)
    at = open_page(None, {"tag": "baseline", "starred": "1"})
    assert not at.exception
    assert ids_shown(at) == [baseline]
    assert not {button.key for button in at.button} & {"cancel_runs", "delete_runs"}
