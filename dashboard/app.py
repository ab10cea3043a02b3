"""Unroll's dashboard: `streamlit run dashboard/app.py`.

The entry point routes to the pages and sets up what they share: the settings, the
database engine, the launch password box and, unless UNROLL_WORKER=off, a local worker
process when none is alive. This process never imports TensorFlow; training happens in
workers.
"""

import streamlit as st
from sqlalchemy.exc import SQLAlchemyError

from dashboard.settings import SettingsError
from dashboard.state import PASSWORD_KEY, database_trouble, ensure_local_worker, sessions, settings
from dashboard.ui import md_escape
from db.engine import DatabaseUnavailable, masked_url

st.set_page_config(page_title="Unroll", layout="wide")
try:
    current = settings()
except SettingsError as error:
    st.error(f"Unroll cannot start: {error}. Fix it in the environment or .streamlit/secrets.toml.")
    st.stop()
try:
    sessions()  # opens (and migrates) the database once per server; a failure is retried on the next rerun
    ensure_local_worker()
except DatabaseUnavailable as error:
    st.error(md_escape(f"Unroll {error}. Fix UNROLL_DB_URL in the environment or .streamlit/secrets.toml."))
    st.stop()

if current.readonly:
    st.info(
        "This dashboard is read-only: you can look at every run and compare them, "
        "but launching and run actions are switched off.",
        icon=":material/lock:",
    )
if current.needs_password:
    st.sidebar.text_input(
        "launch password",
        type="password",
        key=PASSWORD_KEY,
        help="Launching and run actions on this dashboard ask for it.",
    )
st.sidebar.caption(f"Database: {masked_url(current.db_url)}")

pages = [
    st.Page("app_pages/runs.py", title="Runs", icon=":material/table_rows:", default=True),
    st.Page("app_pages/compare.py", title="Compare", icon=":material/stacked_line_chart:"),
    st.Page("app_pages/launch.py", title="Launch", icon=":material/rocket_launch:"),
    st.Page("app_pages/run.py", title="Run", icon=":material/monitoring:"),
]
if current.readonly:
    pages = [page for page in pages if page.title != "Launch"]
try:
    st.navigation(pages).run()
except SQLAlchemyError as error:  # the pages' own reads; their live parts guard themselves (live_view)
    database_trouble(error, retried=False)
