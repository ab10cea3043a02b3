"""Unroll's dashboard: `streamlit run dashboard/app.py`.

The entry point routes to the pages and sets up what they share: the database engine
and, unless UNROLL_WORKER=off, a local worker process when none is alive. This process
never imports TensorFlow; training happens in workers.
"""

import streamlit as st

from dashboard.state import ensure_local_worker

st.set_page_config(page_title="Unroll", layout="wide")
ensure_local_worker()

pages = [
    st.Page("app_pages/runs.py", title="Runs", icon=":material/table_rows:", default=True),
    st.Page("app_pages/compare.py", title="Compare", icon=":material/stacked_line_chart:"),
    st.Page("app_pages/launch.py", title="Launch", icon=":material/rocket_launch:"),
    st.Page("app_pages/run.py", title="Run", icon=":material/monitoring:"),
]
st.navigation(pages).run()
