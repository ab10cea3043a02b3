"""The dashboard through Streamlit's AppTest, on a real SQLite file."""

import base64
import json
import subprocess
import sys
import textwrap

from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from dashboard import charts
from dashboard.ui import md_escape
from db import queue
from db.models import Run, RunStatus
from rnncore.presets import PRESETS

APP = str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py")


def stored_runs(factory):
    with factory() as session:
        return session.scalars(select(Run).order_by(Run.id)).all()


# --- Launch ----------------------------------------------------------------------------


def test_launching_through_the_form_queues_a_validated_run(app_factory, open_page):
    at = open_page("launch")
    at.text_input(key="field_name").set_value("from the form")
    at.selectbox(key="field_mode").set_value("dynamic")
    at.number_input(key="field_hidden_units").set_value(64)
    at.button(key="queue_runs").click().run()
    assert not at.exception and not at.error
    assert "Queued run 1" in at.success[0].value
    [run] = stored_runs(app_factory)
    assert (run.name, run.status, run.config["mode"], run.config["hidden_units"], run.group_name) == (
        "from the form", RunStatus.QUEUED, "dynamic", 64, None)


def test_a_bad_field_shows_its_message_and_queues_nothing(app_factory, open_page, shown):
    at = open_page("launch")
    at.number_input(key="field_hidden_units").set_value(0)
    at.number_input(key="field_learning_rate").set_value(-1.0)
    at.button(key="queue_runs").click().run()
    messages = [shown(error) for error in at.error]
    assert any(m.startswith("hidden_units: must be greater than or equal to 1") for m in messages)
    assert any(m.startswith("learning_rate: must be greater than 0") for m in messages)
    assert "Nothing was queued" in messages[-1]
    assert stored_runs(app_factory) == []


def test_a_grid_shows_its_size_and_queues_the_product_as_one_group(app_factory, open_page):
    at = open_page("launch")
    at.multiselect(key="grid_cell").set_value(["lstm", "gru"])
    at.multiselect(key="grid_mode").set_value(["static", "dynamic"])
    at.text_input(key="grid_hidden_units").set_value("8, 16")
    at.number_input(key="grid_repeats").set_value(2)
    at.text_input(key="launch_group").set_value("my grid").run()
    assert "queues **16** runs" in at.info[0].value
    at.button(key="queue_runs").click().run()
    assert not at.exception and "Queued 16 runs" in at.success[0].value
    runs = stored_runs(app_factory)
    assert len(runs) == 16 and {run.group_name for run in runs} == {"my grid"}
    assert {(run.config["cell"], run.config["mode"], run.config["hidden_units"], run.config["seed"])
            for run in runs} == {(c, m, h, s) for c in ("lstm", "gru") for m in ("static", "dynamic")
                                 for h in (8, 16) for s in (0, 1)}


def test_a_grid_past_the_queue_limit_is_refused(app_factory, monkeypatch, open_page, shown):
    monkeypatch.setenv("UNROLL_MAX_QUEUED", "3")
    at = open_page("launch")
    at.text_input(key="grid_hidden_units").set_value("8, 16, 32, 64").run()
    at.button(key="queue_runs").click().run()
    assert "takes at most 3" in shown(at.error[0])
    assert stored_runs(app_factory) == []


def test_a_preset_queues_its_runs_as_a_group(app_factory, open_page):
    at = open_page("launch")
    preset = PRESETS["e1-static-vs-dynamic"]
    assert any(preset.reproduces == markdown.value for markdown in at.markdown)
    at.button(key=f"preset_{preset.name}").click().run()
    assert not at.exception and "Queued 2 runs" in at.success[0].value
    runs = stored_runs(app_factory)
    assert [run.name for run in runs] == ["E1 lstm static", "E1 lstm dynamic"]
    assert len({run.group_name for run in runs}) == 1 and runs[0].group_name.startswith(preset.name)


# --- Runs ------------------------------------------------------------------------------


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
    assert list(table["name"]) == ["waiting <b>bold</b>"] and list(table["status"]) == ["queued"]
    assert "no worker is alive" in at.warning[0].value


def test_the_runs_page_filters_and_shows_progress_and_errors(app_factory, open_page, seed):
    finished = seed("done", steps=20, cell="gru")
    with app_factory.begin() as session:
        failing = queue.enqueue(session, {"name": "broken", "max_steps": 40})
        queue.claim_next(session, "w")
        queue.append_metrics(session, failing, "w", [queue.Point("loss", 10, 0.1, 1.0)])
        queue.fail(session, failing, "w", "Traceback\nValueError: out of memory")
    at = open_page()
    table = at.dataframe[0].value
    assert list(table["progress"]) == [0.25, 1.0] and table["error"][0] == "Traceback"
    select_rows(at, [0])
    assert "ValueError: out of memory" in at.code[0].value
    at.multiselect(key="filter_status").set_value(["failed"]).run()
    assert list(at.dataframe[0].value["id"]) == [failing]
    assert "ValueError: out of memory" in at.code[0].value  # the selection survives the new rows
    at.multiselect(key="filter_cell").set_value(["gru"]).run()
    assert "No runs match" in at.info[0].value and finished


def test_the_runs_page_cancels_requeues_and_deletes_after_confirmation(app_factory, open_page):
    with app_factory.begin() as session:
        first, second = queue.enqueue_many(session, [{"name": "a", "max_steps": 3}, {"name": "b", "max_steps": 3}])
    at = open_page()
    select_rows(at, [0, 1])
    at.button(key="cancel_runs").click().run()
    assert not at.exception and len(at.success) == 2
    assert [run.status for run in stored_runs(app_factory)] == [RunStatus.CANCELLED] * 2
    select_rows(at, [1])  # newest first: row 1 is the first run
    at.button(key="requeue_runs").click().run()
    assert stored_runs(app_factory)[0].status == RunStatus.QUEUED
    select_rows(at, [0])
    at.button(key="delete_runs").click().run()
    assert "cannot be undone" in at.warning[-1].value and len(stored_runs(app_factory)) == 2
    at.button(key="confirm_delete_yes").click().run()
    assert [run.id for run in stored_runs(app_factory)] == [first]


def test_compare_selected_opens_compare_with_those_runs(app_factory, open_page, seed):
    a, b = seed("a"), seed("b")
    at = open_page()
    select_rows(at, [0, 1])
    at.button(key="compare_selected").click().run()
    assert not at.exception
    assert at.multiselect(key="cmp_runs").value == [b, a]  # newest first, as in the table
    assert at.query_params["runs"] == f"{b},{a}"


# --- Compare ---------------------------------------------------------------------------


def tables_by_name(at):
    """The Compare page's tables: per group (when grouping), per run, config diff (two runs or more)."""
    frames = [frame.value for frame in at.dataframe]
    names = (["per group"] if at.session_state["cmp_group"] else []) + ["per run", "config diff"]
    return dict(zip(names, frames))


def figure_names(at):
    """The trace names of every Plotly chart on the page, chart by chart."""
    return [[trace.get("name") for trace in json.loads(chart.proto.spec)["data"]] for chart in at.get("plotly_chart")]


def test_compare_draws_e1s_plots_for_the_selected_runs(app_factory, open_page, seed):
    static = seed("static", mode="static", ms_per_step=10)
    dynamic = seed("dynamic", mode="dynamic", ms_per_step=14)
    at = open_page("compare", {"runs": f"{static},{dynamic}"})
    assert not at.exception
    names = figure_names(at)
    # steps over time; accuracy vs step and vs seconds; loss vs step and vs seconds
    assert len(names) == 5 and all(n == [f"#{static} static", f"#{dynamic} dynamic"] for n in names)
    summary = tables_by_name(at)["per run"]
    assert list(summary["ms per step"]) == [10.0, 14.0]
    assert list(tables_by_name(at)["config diff"].index) == ["mode"]
    at.selectbox(key="cmp_baseline").set_value(f"#{dynamic} dynamic").run()
    assert at.markdown[0].value == "- " + md_escape(f"#{static} static is 1.40x faster than #{dynamic} dynamic")


def test_compare_groups_seed_repeats_into_mean_and_band(app_factory, open_page, seed):
    for number in (0, 1):
        seed(f"s{number}", mode="static", seed=number)
        seed(f"d{number}", mode="dynamic", seed=number, ms_per_step=12)
    at = open_page("compare", {"runs": "1,2,3,4", "group": "mode", "smooth": "0.5"})
    assert not at.exception
    names = figure_names(at)
    # per group: band high + band low + faint raw + mean; the steps chart is not smoothed (no raw line)
    assert len(names[1]) == 8 and "mode=static (2 runs)" in names[1]
    assert list(tables_by_name(at)["per group"]["runs"]) == [2, 2]
    # grouped, the speed baseline is a group: a single run would give no group ratio at all
    assert at.selectbox(key="cmp_baseline").options == ["(none)", "mode=dynamic", "mode=static"]


def test_a_shared_link_restores_the_view_and_changes_are_written_back(app_factory, open_page, seed):
    ids = [seed(name) for name in ("a", "b", "c")]
    at = open_page("compare", {"runs": f"{ids[2]},{ids[0]}", "x": "seconds", "smooth": "0.6", "group": "mode",
                               "log": "1"})
    assert at.multiselect(key="cmp_runs").value == [ids[2], ids[0]]
    assert (at.radio(key="cmp_x").value, at.slider(key="cmp_smooth").value, at.selectbox(key="cmp_group").value,
            at.checkbox(key="cmp_log").value) == ("seconds", 0.6, "mode", True)
    at.radio(key="cmp_x").set_value("wall").run()
    assert at.query_params["x"] == "wall" and at.query_params["runs"] == f"{ids[2]},{ids[0]}"
    assert at.slider(key="cmp_smooth").value == 0.6  # the rest of the view is kept


def test_compare_shows_series_figures_and_the_mse(app_factory, open_page, seed):
    series = {"instance": {"inputs": [0.0] * 20, "targets": [1.0] * 20, "predictions": [0.5] * 20},
              "rollouts": {"zeros": [0.0] * 320, "real": [1.0] * 320}}
    run_id = seed("series", task="series", summary={"series": series})
    at = open_page("compare", {"runs": str(run_id)})
    assert not at.exception
    names = figure_names(at)
    assert ["instance", "targets", "predictions"] in names and ["seed: zeros", "seed: real"] in names
    assert list(tables_by_name(at)["per run"]["test MSE"]) == [0.04]


def test_compare_with_nothing_selected_says_what_to_do(app_factory, open_page):
    at = open_page("compare")
    assert not at.exception and "Choose runs" in at.info[0].value


# --- Run -------------------------------------------------------------------------------


def test_the_run_page_shows_one_run_with_its_error(app_factory, open_page, seed):
    run_id = seed("<img src=x onerror=alert(1)>")
    with app_factory.begin() as session:
        failed = queue.enqueue(session, {"name": "broken", "max_steps": 3})
        queue.claim_next(session, "w")
        queue.fail(session, failed, "w", "worker lost: no heartbeat")
    at = open_page("run", {"run": str(run_id)})
    assert not at.exception
    assert at.subheader[0].value == "\\#1 \\<img src=x onerror=alert\\(1\\)\\>"
    assert len(at.get("plotly_chart")) == 4  # loss and accuracy, each against step and seconds
    at.selectbox(key="run_id").set_value(failed).run()
    assert "worker lost" in at.code[0].value and at.query_params["run"] == str(failed)


def test_the_dashboard_process_never_imports_tensorflow(sqlite_url, tmp_path):
    script = textwrap.dedent(f"""
        import os, sys
        os.environ.update(UNROLL_DB_URL={sqlite_url!r}, UNROLL_WORKER="off")
        from streamlit.testing.v1 import AppTest
        at = AppTest.from_file({APP!r}, default_timeout=30).run()
        for page in ("launch", "compare", "run"):
            at.switch_page(f"app_pages/{{page}}.py").run()
            assert not at.exception, at.exception
        heavy = sorted(name for name in sys.modules if name.split(".")[0] in ("tensorflow", "keras"))
        print("HEAVY", heavy)
        sys.exit(1 if heavy else 0)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "HEAVY []" in result.stdout


def test_long_curves_are_downsampled_for_plotting_only(app_factory, open_page, seed):
    run_id = seed("long", steps=6000)
    at = open_page("compare", {"runs": str(run_id)})
    assert not at.exception
    [trace] = json.loads(at.get("plotly_chart")[1].proto.spec)["data"]  # accuracy vs step
    y = trace["y"]  # plotly sends arrays as typed, base64-encoded buffers
    values = np.frombuffer(base64.b64decode(y["bdata"]), dtype=y["dtype"]) if isinstance(y, dict) else np.array(y)
    assert len(values) <= charts.MAX_POINTS  # of 6,000 stored
    assert values.max() == pytest.approx(1 - (2.3 * np.exp(-6000 / 15) + 0.05) / 2.4)  # the extreme is kept
