"""Every stored run: filters, a live table in pages, worker health, and actions on the selected runs.

The table lives in a fragment that polls the store's change token every couple of seconds,
whatever this tab did: a run queued from another tab, the command line or another machine
appears, and a lost run turns "failed" without a reload.
"""

import zlib
from datetime import datetime, timezone

import streamlit as st

from dashboard import actions
from dashboard.state import (
    PASSWORD_KEY,
    REFRESH_SECONDS,
    filter_options,
    live_view,
    local_worker_state,
    run_page,
    sessions,
    settings,
    watch,
    worker_health,
)
from dashboard.ui import md_escape

FILTERS = ("status", "group", "task", "cell", "mode")
PAGE_SIZE = 200
SELECTED = "runs_selected"  # run ids, the selection's source of truth (table rows move as runs arrive)
CONFIRM = "runs_confirm"  # (action key, run ids) waiting for a yes
COLUMNS = [
    "id",
    "name",
    "status",
    "progress",
    "steps",
    "ms/step",
    "loss",
    "accuracy",
    "test accuracy",
    "test MSE",
    "cell",
    "mode",
    "task",
    "group",
    "elapsed s",
    "worker",
    "error",
]


def _health(health, local) -> None:
    """Live workers (heartbeat ages tick), a starting or restarted local worker, silent runs."""
    if local is not None and local.notice:
        st.warning(md_escape(local.notice))
    if health["stranded"] and local is not None and local.starting:
        st.info(
            f"{health['queued']} run(s) queued: the local worker is starting (TensorFlow takes a few seconds "
            "to load), they will start soon."
        )
    elif health["stranded"]:
        st.warning(
            f"{health['queued']} run(s) queued but no worker is alive: nothing will run. Start one with "
            "`python -m rnncore.worker`, or run the dashboard without UNROLL_WORKER=off."
        )
    for run_id, silent_for in health["silent"]:
        st.warning(
            f"Run {run_id} has sent no heartbeat for {silent_for:.0f} s: its worker may be lost. It is "
            f"failed as 'worker lost' after {settings().stale_after:g} s without one."
        )
    now = datetime.now(timezone.utc)
    workers = [
        f"{w['id']} on {w['host']} (run {w['run'] or '-'}, heartbeat "
        f"{(now - w['last heartbeat']).total_seconds():.0f} s ago)"
        for w in health["workers"]
    ]
    st.caption("Live workers: " + md_escape("; ".join(workers) or "none"))


def _page_picker(page) -> None:
    """The page picker, showing the page actually drawn (runs come and go: page 10 may be gone)."""
    pages = max(1, -(-page.total // PAGE_SIZE))
    st.session_state["runs_page"] = page.offset // PAGE_SIZE + 1
    if pages > 1:
        st.number_input(f"page (of {pages})", min_value=1, max_value=pages, step=1, key="runs_page")


def _table(page, chosen) -> None:
    if not page.rows:
        st.info(
            "No runs match the filters." if any(chosen.values()) else "No runs yet: launch one from the Launch page."
        )
        return
    first = page.offset + 1
    st.caption(
        f"Runs {first:,}–{page.offset + len(page.rows):,} of {page.total:,}"
        f"{' matching the filters' if any(chosen.values()) else ''}, newest first."
    )
    ids = [row["id"] for row in page.rows]
    selected = set(st.session_state.get(SELECTED, []))
    # The table's selection is by row position: a new key whenever the rows change restores it from ids.
    key = st.session_state["runs_table_key"] = f"runs_table_{zlib.crc32(repr(ids).encode())}"
    event = st.dataframe(
        page.rows,
        hide_index=True,
        width="stretch",
        key=key,
        placeholder="",
        on_select="rerun",
        selection_mode="multi-row",
        selection_default={"selection": {"rows": [i for i, run_id in enumerate(ids) if run_id in selected]}},
        column_order=COLUMNS,  # what people decide by first; "elapsed s" includes start-up, ms/step does not
        column_config={
            "progress": st.column_config.ProgressColumn(min_value=0.0, max_value=1.0, format="percent"),
            "accuracy": st.column_config.NumberColumn(format="%.3f", help="latest batch"),
            "test accuracy": st.column_config.NumberColumn(format="%.4f"),
            "test MSE": st.column_config.NumberColumn(format="%.4g"),
            "ms/step": st.column_config.NumberColumn(format="%.2f", help="median training step"),
            "elapsed s": st.column_config.NumberColumn(
                help="wall time since the run started, including TensorFlow start-up and graph building"
            ),
            "loss": st.column_config.NumberColumn(format="%.4f", help="latest batch"),
            "error": st.column_config.TextColumn(width="large"),
        },
    )
    rows_selected = event.selection.rows if event is not None else []
    st.session_state[SELECTED] = [ids[i] for i in rows_selected if i < len(ids)]
    for row in page.rows:
        if row["id"] in st.session_state[SELECTED] and row["error_text"]:
            st.error(f"Run {row['id']} failed:")
            st.code(row["error_text"], language=None)


@st.fragment(run_every=REFRESH_SECONDS)
@live_view
def live() -> None:
    """Redrawn every tick from caches keyed by the change token: cheap when nothing moved."""
    token = watch()
    _health(worker_health(), local_worker_state())
    chosen = {column: st.session_state.get(f"filter_{column}") or [] for column in FILTERS}
    wanted = st.session_state.get("runs_page", 1)
    page = run_page(token, chosen, (wanted - 1) * PAGE_SIZE, PAGE_SIZE)  # past the end: the last page
    _page_picker(page)
    _table(page, chosen)


def _act(key: str, ids) -> None:
    """Apply an action (after its confirmation, if it asks one); messages show after the rerun."""
    st.session_state.pop(CONFIRM, None)
    st.session_state["runs_messages"] = actions.apply(
        key, ids, sessions(), settings(), st.session_state.get(PASSWORD_KEY)
    )


def _ask_or_act(key: str) -> None:
    selected = list(st.session_state.get(SELECTED, []))
    if actions.ACTIONS[key].confirm and selected:
        st.session_state[CONFIRM] = (key, selected)
    else:
        _act(key, selected)


def _confirmation() -> None:
    key, ids = st.session_state[CONFIRM]
    st.warning(actions.ACTIONS[key].question(f"{len(ids)} run(s) ({', '.join(map(str, ids))})"))
    yes, no = st.columns(2)
    yes.button("Yes", key=f"confirm_{key}_yes", type="primary", on_click=_act, args=(key, ids))
    no.button("No, keep them as they are", key=f"confirm_{key}_no", on_click=lambda: st.session_state.pop(CONFIRM))


st.title("Runs")
options = filter_options(watch())
for column, place in zip(FILTERS, st.columns(len(FILTERS))):
    place.multiselect(column, options[column], key=f"filter_{column}", placeholder="all")

live()

# Outside the fragment: these rerun the page. The selection they act on is read when clicked.
buttons = st.container(horizontal=True)
compare = buttons.button("Compare selected", key="compare_selected", type="primary")
open_run = buttons.button("Open run page", key="open_run")
if not settings().readonly:  # read-only: no buttons, and actions.apply refuses on the server side too
    for action in actions.ACTIONS.values():
        buttons.button(action.label, key=f"{action.key}_runs", on_click=_ask_or_act, args=(action.key,))
selected = st.session_state.get(SELECTED, [])
if (compare or open_run) and not selected:
    st.info("Select runs in the table first (click the boxes at the left of the rows).")
elif compare:
    st.switch_page("app_pages/compare.py", query_params={"runs": ",".join(map(str, selected))})
elif open_run:
    st.switch_page("app_pages/run.py", query_params={"run": str(selected[0])})
if st.session_state.get(CONFIRM):
    _confirmation()
for kind, message in st.session_state.pop("runs_messages", []):
    getattr(st, kind)(md_escape(message))
