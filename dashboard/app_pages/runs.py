"""Every stored run: filters and sort (kept in the URL, so a filtered view is a link), a live table
in pages, worker health, and actions on the selected runs.

The table lives in a fragment that polls the store's change token every couple of seconds,
whatever this tab did: a run queued from another tab, the command line or another machine
appears, and a lost run turns "failed" without a reload. Filters and sort run in the database
(dashboard.queries), so 10,000 runs page as fast as 100.
"""

import zlib
from datetime import datetime, timezone

import streamlit as st

from dashboard import actions, run_filters, run_search
from dashboard.queries import SORTS
from dashboard.state import (
    PASSWORD_KEY,
    REFRESH_SECONDS,
    filter_options,
    live_view,
    local_worker_state,
    sessions,
    settings,
    watch,
    worker_health,
)
from dashboard.ui import md_escape

FILTERS = ("status", "group", "task", "cell", "mode")  # the first row; the rest follow below it
WIDGETS = {name: f"filter_{name}" for name in run_filters.SETTINGS}  # every setting's widget key
VIEW = "runs_view"  # the RunsView the widgets describe, read by the live table
WRITTEN = "runs_written"  # the URL query this session wrote; any other one is a link to follow
SAVED = "runs_saved"  # the widgets' values, restored after a page switch drops them
PAGE_SIZE = 200
SELECTED = "runs_selected"  # run ids, the selection's source of truth (table rows move as runs arrive)
CONFIRM = "runs_confirm"  # (action key, run ids) waiting for a yes
SORT_LABELS = {
    "id": "id (age)",
    "starred": "★ starred",
    "ms_per_step": "ms/step",
    "elapsed": "elapsed s",
    "test_accuracy": "test accuracy",
    "test_mse": "test MSE",
}
FLAG_LABELS = {"": "any", "1": "yes", "0": "no"}
ORDER_LABELS = {"desc": "descending", "asc": "ascending"}
COLUMNS = [  # id, name and status stay first (tests/e2e read the status by position)
    "id",
    "name",
    "status",
    "starred",
    "tags",
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


def _order_text(view: run_filters.RunsView) -> str:
    if view.sort == run_filters.DEFAULT_SORT:
        return "newest first" if view.descending else "oldest first"
    return f"by {SORT_LABELS.get(view.sort, view.sort)}, {'descending' if view.descending else 'ascending'}"


def _table(page, view: run_filters.RunsView) -> None:
    if not page.rows:
        st.info("No runs match the filters." if view.filters else "No runs yet: launch one from the Launch page.")
        return
    first = page.offset + 1
    st.caption(
        f"Runs {first:,}–{page.offset + len(page.rows):,} of {page.total:,}"
        f"{' matching the filters' if view.filters else ''}, {_order_text(view)}."
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
            "starred": st.column_config.CheckboxColumn("★", width="small"),
            "tags": st.column_config.ListColumn("tags"),
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
    view = st.session_state.get(VIEW) or run_filters.RunsView()
    wanted = st.session_state.get("runs_page", 1)
    page = run_search.run_page(token, view, (wanted - 1) * PAGE_SIZE, PAGE_SIZE)  # past the end: the last page
    _page_picker(page)
    _table(page, view)


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


# --- filters and sort, kept in the URL -----------------------------------------------------


def _url_params() -> dict[str, list[str]]:
    """Every URL parameter with all its occurrences (?group=a&group=b)."""
    return {key: st.query_params.get_all(key) for key in st.query_params}


def seed_filters() -> list[str]:
    """Seed the widgets from the URL when it holds a view this session did not write (a shared link,
    an edited address), else keep them (or restore them after a page switch). Returns what the link
    held that was left out, and why."""
    params = _url_params()
    from_url = bool(params) and params != st.session_state.get(WRITTEN)
    linked = run_filters.from_query(params) if from_url else run_filters.RunsView()
    values = run_filters.widget_values(linked) if from_url else st.session_state.get(SAVED)
    values = values or run_filters.widget_values(run_filters.RunsView())
    for name, key in WIDGETS.items():
        if from_url or key not in st.session_state:
            st.session_state[key] = values[name]
    return list(linked.problems)


def write_filters() -> run_filters.RunsView:
    """The view the widgets describe (typed text checked like a link's), written to the URL."""
    values = {name: st.session_state[key] for name, key in WIDGETS.items()}
    st.session_state[SAVED] = values
    view = run_filters.from_query(run_filters.query_from_widgets(values))
    query = run_filters.to_query(view)
    written = {key: [value] if isinstance(value, str) else list(value) for key, value in query.items()}
    if written != _url_params():
        st.query_params.from_dict(query)
    st.session_state[WRITTEN] = written
    st.session_state[VIEW] = view
    return view


def _choices(name: str, offered) -> list[str]:
    """A multiselect's options: what the store offers, plus what a link asked for (a tag no run has
    yet must still show as chosen: the table then says no run matches)."""
    chosen = st.session_state.get(WIDGETS[name]) or []
    return [*offered, *(value for value in chosen if value not in offered)]


def _filter_widget(place, name: str, options: dict) -> None:
    """One filter's widget, by the kind of its URL parameter (see dashboard.run_filters)."""
    param, key = run_filters.PARAMS[name], WIDGETS[name]
    label = "data source" if name == "source" else name.replace("_", " ")
    if param.kind in ("choices", "groups", "tags"):
        offered = options.get(name, list(param.choices))
        place.multiselect(label, _choices(name, offered), key=key, placeholder="all")
    elif param.kind == "yesno":
        place.selectbox(label, list(FLAG_LABELS), key=key, format_func=FLAG_LABELS.get)
    elif param.kind == "numbers":
        example = "32, 128 or 64..512" if param.number is int else "0.01 or 0.001..0.01"
        unset = "; none: not set" if param.optional else ""
        place.text_input(label, key=key, placeholder="any", help=f"Values or ranges, e.g. {example}{unset}.")
    else:
        place.text_input(label, key=key, placeholder="any", help="Contains this text (any case).")


def filter_widgets(options: dict) -> None:
    """Status, group, task, cell and mode; tags, search, star and sort; the other config fields and
    the data source in an expander. Every widget's key is its URL parameter's (see WIDGETS)."""
    for column, place in zip(FILTERS, st.columns(len(FILTERS))):
        _filter_widget(place, column, options)
    tag, search, star, sort, order = st.columns([3, 4, 1.2, 2, 1.6], vertical_alignment="bottom")
    _filter_widget(tag, "tag", options)
    search.text_input(
        "search",
        key=WIDGETS["q"],
        placeholder="name, group, tags, notes",
        help="Every word must appear; #12 finds run 12.",
    )
    star.checkbox("★ starred", key=WIDGETS["starred"])
    sort.selectbox("sort by", list(SORTS), key=WIDGETS["sort"], format_func=lambda k: SORT_LABELS.get(k, k))
    order.radio(
        "order", run_filters.ORDERS, key=WIDGETS["order"], format_func=ORDER_LABELS.get, label_visibility="hidden"
    )
    more = [name for name in run_filters.PARAMS if name not in (*FILTERS, "tag", "q", "starred", "source")]
    more.append("source")
    chosen = sum(bool(st.session_state.get(WIDGETS[name])) for name in more)
    with st.expander(f"More filters: config fields and data source{f' ({chosen} set)' if chosen else ''}"):
        for row in range(0, len(more), 6):
            for name, place in zip(more[row : row + 6], st.columns(6)):
                _filter_widget(place, name, options)


st.title("Runs")
left_out = seed_filters()
filter_widgets(filter_options(watch()))
view = write_filters()
if left_out or view.problems:
    st.warning(md_escape("Left out of the filters: " + "; ".join([*left_out, *view.problems]) + "."))

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
