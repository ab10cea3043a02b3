"""The dashboard through Streamlit's AppTest, on a real SQLite file."""

import subprocess
import sys
import textwrap

from pathlib import Path

from sqlalchemy import select

from db import queue
from db.models import Run, RunStatus

APP = str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py")


def stored_runs(factory):
    with factory() as session:
        return session.scalars(select(Run).order_by(Run.id)).all()


# --- Runs ------------------------------------------------------------------------------


def select_rows(at, rows):
    """Select table rows as a click would (the table's key changes with its rows)."""
    at.session_state[at.session_state["runs_table_key"]] = {"selection": {"rows": rows, "columns": []}}
    at.run()


def test_compare_selected_opens_compare_with_those_runs(app_factory, open_page, seed):
    a, b = seed("a"), seed("b")
    at = open_page()
    select_rows(at, [0, 1])
    at.button(key="compare_selected").click().run()
    assert not at.exception
    assert at.multiselect(key="cmp_runs").value == [b, a]  # newest first, as in the table
    assert at.query_params["runs"] == f"{b},{a}"


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
