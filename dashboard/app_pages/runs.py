"""Every stored run and its status, refreshed while anything is queued or running."""

import streamlit as st

from dashboard import queries
from dashboard.local_worker import LIVE_WITHIN
from dashboard.state import sessions
from db import queue

REFRESH_SECONDS = 2

st.title("Runs")


@st.fragment(run_every=REFRESH_SECONDS)
def live_table() -> None:
    with sessions()() as session:
        rows = queries.run_rows(session)
        health = queries.worker_health(session, LIVE_WITHIN)
    if health["stranded"]:
        st.warning(f"{health['queued']} runs are queued but no worker is alive. Start one with "
                   "`python -m rnncore.worker` (or unset UNROLL_WORKER=off and reload).")
    workers = ", ".join(f"{w['id']} (run {w['run'] or '-'})" for w in health["workers"]) or "none"
    st.caption(f"Live workers: {workers}")
    if not rows:
        st.info("No runs yet: launch one from the Launch page.")
        return
    st.dataframe(rows, hide_index=True, width="stretch", key="runs_table",
                 column_config={"accuracy": st.column_config.NumberColumn(format="%.3f"),
                                "loss": st.column_config.NumberColumn(format="%.4f")})


live_table()

with st.expander("Act on a run"):
    run_id = st.number_input("run id", min_value=1, step=1, value=None, key="action_run_id")
    cancel, requeue = st.columns(2)
    if cancel.button("Cancel", disabled=run_id is None, key="cancel_run"):
        try:
            with sessions().begin() as session:
                status = queue.request_cancel(session, int(run_id))
            st.success(f"Run {run_id}: {'cancelled' if status.value == 'cancelled' else 'cancel requested'}")
        except queue.TransitionError as refused:
            st.error(str(refused))
    if requeue.button("Re-queue", disabled=run_id is None, key="requeue_run"):
        try:
            with sessions().begin() as session:
                queue.requeue(session, int(run_id))
            st.success(f"Run {run_id} is queued again.")
        except queue.TransitionError as refused:
            st.error(str(refused))
