"""The dashboard through Streamlit's AppTest, on a real SQLite file."""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from db import queue
from db.engine import make_engine, session_factory
from db.models import Run, RunStatus

APP = str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py")


@pytest.fixture
def factory(sqlite_url, monkeypatch):
    monkeypatch.setenv("UNROLL_DB_URL", sqlite_url)
    monkeypatch.setenv("UNROLL_WORKER", "off")
    return session_factory(make_engine(sqlite_url))


def launch_page():
    at = AppTest.from_file(APP, default_timeout=30).run()
    at.switch_page("app_pages/launch.py").run()
    assert not at.exception
    return at


def stored_runs(factory):
    with factory() as session:
        return session.scalars(select(Run)).all()


def test_launching_through_the_form_queues_a_validated_run(factory):
    at = launch_page()
    at.text_input(key="field_name").set_value("from the form")
    at.selectbox(key="field_mode").set_value("dynamic")
    at.number_input(key="field_hidden_units").set_value(64)
    at.button(key="FormSubmitter:launch-Queue run").click().run()
    assert not at.exception and not at.error
    assert "Queued run 1" in at.success[0].value
    [run] = stored_runs(factory)
    assert (run.name, run.status, run.config["mode"], run.config["hidden_units"]) == (
        "from the form", RunStatus.QUEUED, "dynamic", 64)


def test_a_bad_field_shows_its_message_and_queues_nothing(factory):
    at = launch_page()
    at.number_input(key="field_hidden_units").set_value(0)
    at.number_input(key="field_learning_rate").set_value(-1.0)
    at.button(key="FormSubmitter:launch-Queue run").click().run()
    messages = [error.value for error in at.error]
    assert any(m.startswith("hidden_units: must be greater than or equal to 1") for m in messages)
    assert any(m.startswith("learning_rate: must be greater than 0") for m in messages)
    assert "Nothing was queued" in messages[-1]
    assert stored_runs(factory) == []


def test_the_runs_page_lists_runs_and_warns_when_no_worker_is_alive(factory):
    with factory.begin() as session:
        queue.enqueue(session, {"name": "waiting <b>bold</b>", "max_steps": 3})
    at = AppTest.from_file(APP, default_timeout=30).run()
    assert not at.exception
    table = at.dataframe[0].value
    assert list(table["name"]) == ["waiting <b>bold</b>"] and list(table["status"]) == ["queued"]
    assert "no worker is alive" in at.warning[0].value


def test_the_runs_page_cancels_a_queued_run(factory):
    with factory.begin() as session:
        run_id = queue.enqueue(session, {"name": "to cancel", "max_steps": 3})
    at = AppTest.from_file(APP, default_timeout=30).run()
    at.number_input(key="action_run_id").set_value(run_id).run()
    at.button(key="cancel_run").click().run()
    assert not at.exception and "cancelled" in at.success[0].value
    assert stored_runs(factory)[0].status == RunStatus.CANCELLED


def test_the_dashboard_process_never_imports_tensorflow(sqlite_url, tmp_path):
    script = textwrap.dedent(f"""
        import os, sys
        os.environ.update(UNROLL_DB_URL={sqlite_url!r}, UNROLL_WORKER="off")
        from streamlit.testing.v1 import AppTest
        at = AppTest.from_file({APP!r}, default_timeout=30).run()
        at.switch_page("app_pages/launch.py").run()
        assert not at.exception, at.exception
        heavy = sorted(name for name in sys.modules if name.split(".")[0] in ("tensorflow", "keras"))
        print("HEAVY", heavy)
        sys.exit(1 if heavy else 0)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "HEAVY []" in result.stdout
