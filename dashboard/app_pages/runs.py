"""Every stored run: filters, a live table (refreshed while anything is queued or running),
worker health, and actions on the selected runs."""

import zlib
from datetime import datetime, timezone

import streamlit as st

from dashboard import launching, queries
from dashboard.local_worker import LIVE_WITHIN
from dashboard.settings import NotAllowed
from dashboard.state import check_write, sessions, settings
from dashboard.ui import md_escape
from db import queue
from db.run_config import ConfigError

REFRESH_SECONDS = 2
FILTERS = ("status", "group", "task", "cell", "mode")
SELECTED = "runs_selected"  # run ids, the selection's source of truth (table rows move as runs arrive)


def _read():
    with sessions()() as session:
        return queries.run_rows(session), queries.worker_health(session, LIVE_WITHIN)


def _health(health) -> None:
    if health["stranded"]:
        st.warning(f"{health['queued']} run(s) queued but no worker is alive: nothing will run. Start one with "
                   "`python -m rnncore.worker`, or run the dashboard without UNROLL_WORKER=off and reload.")
    now = datetime.now(timezone.utc)
    workers = [f"{w['id']} on {w['host']} (run {w['run'] or '-'}, heartbeat "
               f"{(now - w['last heartbeat']).total_seconds():.0f} s ago)" for w in health["workers"]]
    st.caption("Live workers: " + md_escape("; ".join(workers) or "none"))


def _table(rows) -> None:
    chosen = {column: st.session_state.get(f"filter_{column}") or [] for column in FILTERS}
    shown = queries.filter_rows(rows, **chosen)
    if not shown:
        st.info("No runs match the filters." if rows else "No runs yet: launch one from the Launch page.")
        return
    ids = [row["id"] for row in shown]
    selected = set(st.session_state.get(SELECTED, []))
    # The table's selection is by row position: a new key whenever the rows change restores it from ids.
    key = st.session_state["runs_table_key"] = f"runs_table_{zlib.crc32(repr(ids).encode())}"
    event = st.dataframe(
        shown, hide_index=True, width="stretch", key=key, placeholder="",
        on_select="rerun", selection_mode="multi-row",
        selection_default={"selection": {"rows": [i for i, run_id in enumerate(ids) if run_id in selected]}},
        # What people decide by first; "elapsed s" includes start-up and graph building, ms/step does not.
        column_order=["id", "name", "status", "progress", "steps", "ms/step", "loss", "accuracy", "final",
                      "cell", "mode", "task", "group", "elapsed s", "worker", "error"],
        column_config={"progress": st.column_config.ProgressColumn(min_value=0.0, max_value=1.0, format="percent"),
                       "accuracy": st.column_config.NumberColumn(format="%.3f"),
                       "ms/step": st.column_config.NumberColumn(format="%.2f", help="median training step"),
                       "elapsed s": st.column_config.NumberColumn(
                           help="wall time since the run started, including TensorFlow start-up and graph building"),
                       "loss": st.column_config.NumberColumn(format="%.4f"),
                       "error": st.column_config.TextColumn(width="large")},
    )
    rows_selected = event.selection.rows if event is not None else []
    st.session_state[SELECTED] = [ids[i] for i in rows_selected if i < len(ids)]
    for row in shown:
        if row["id"] in st.session_state[SELECTED] and row["error_text"]:
            st.error(f"Run {row['id']} failed:")
            st.code(row["error_text"], language=None)


def live(refresh: bool) -> None:
    rows, health = _read()
    _health(health)
    _table(rows)
    if refresh and not health["active"]:
        st.rerun(scope="app")  # nothing left to watch: stop the timer by redrawing the page


def _act(action, verb: str, ids=None) -> None:
    """Apply a queue action to the selected runs (or `ids`); messages show after the rerun."""
    ids = st.session_state.get(SELECTED, []) if ids is None else ids
    messages = [] if ids else [("info", "Select runs in the table first.")]
    try:
        check_write()
    except NotAllowed as refused:
        ids, messages = [], [("error", str(refused))]
    for run_id in ids:
        try:
            with sessions().begin() as session:
                result = action(session, run_id)
            messages.append(("success", f"Run {run_id}: {result or verb}"))
        except (queue.TransitionError, queue.QueueFullError, ConfigError) as refused:
            messages.append(("error", md_escape(str(refused))))
    st.session_state["runs_messages"] = messages
    st.session_state.pop("confirm_delete", None)


def _requeue(session, run_id):
    launching.requeue(session, run_id, settings())


def _cancel(session, run_id):
    status = queue.request_cancel(session, run_id)
    return "cancelled" if status.value == "cancelled" else "cancel requested"


st.title("Runs")
rows, health = _read()
filters = st.columns(len(FILTERS))
for column, place in zip(FILTERS, filters):
    options = sorted({row[column] for row in rows if row[column] is not None})
    place.multiselect(column, options, key=f"filter_{column}", placeholder="all")

st.fragment(run_every=REFRESH_SECONDS if health["active"] else None)(live)(health["active"])

# Outside the fragment: these rerun the page. The selection they act on is read when clicked.
buttons = st.container(horizontal=True)
compare = buttons.button("Compare selected", key="compare_selected", type="primary")
open_run = buttons.button("Open run page", key="open_run")
writable = not settings().readonly  # read-only: no buttons, and _act refuses on the server side too
if writable:
    buttons.button("Cancel", key="cancel_runs", on_click=_act, args=(_cancel, "cancelled"))
    buttons.button("Re-queue", key="requeue_runs", on_click=_act, args=(_requeue, "queued again"))
delete = writable and buttons.button("Delete…", key="delete_runs")
selected = st.session_state.get(SELECTED, [])
if (compare or open_run or delete) and not selected:
    st.info("Select runs in the table first (click the boxes at the left of the rows).")
elif compare:
    st.switch_page("app_pages/compare.py", query_params={"runs": ",".join(map(str, selected))})
elif open_run:
    st.switch_page("app_pages/run.py", query_params={"run": str(selected[0])})
elif delete:
    st.session_state["confirm_delete"] = list(selected)
if st.session_state.get("confirm_delete"):
    doomed = st.session_state["confirm_delete"]
    st.warning(f"Delete {len(doomed)} run(s) ({', '.join(map(str, doomed))}) and all their points? "
               "This cannot be undone.")
    yes, no = st.columns(2)
    yes.button("Yes, delete", key="confirm_delete_yes", type="primary",
               on_click=_act, args=(queue.delete_run, "deleted", doomed))
    no.button("Keep them", key="confirm_delete_no", on_click=lambda: st.session_state.pop("confirm_delete", None))
for kind, message in st.session_state.pop("runs_messages", []):
    getattr(st, kind)(message)
