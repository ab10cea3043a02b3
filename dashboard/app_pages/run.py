"""One run (?run=ID): status, its name, tags, notes and star (editable), actions, error and worker
log, every curve, summary, config and series figures.

The page is drawn from caches keyed by the store's change token, and state.follow_changes polls
that token every couple of seconds, whatever the run's status: a run cancelled, finished or
deleted anywhere (another tab, a worker, the command line) shows its new state without a reload.
"""

import re
from datetime import datetime, timezone

import pandas as pd
import streamlit as st

from dashboard import actions, charts
from dashboard.queries import RunInfo
from dashboard.sharing import parse_run_id
from dashboard.state import (
    PASSWORD_KEY,
    follow_changes,
    live_view,
    points_for,
    run_choices,
    run_infos,
    sessions,
    settings,
    watch,
)
from dashboard.summary import no_summary_text, summary_rows
from dashboard.ui import md_escape, series_figures
from db import queue

PAGE = "app_pages/run.py"
PICKED = "run_id"  # the picker's value: the run shown (None when the address names no run)
WRITTEN = "run_written"  # the ?run= this page wrote itself; any other value is a link to follow
CONFIRM = "run_confirm"  # (action key, run id) waiting for its "Yes"
MESSAGES = "run_messages"  # (run id, [(kind, text)]): what the last action on this page said
RERUN_MADE = re.compile(r"queued again as run (\d+)")  # dashboard.actions' "Run again" message
ANNOTATION_KEYS = {field: f"annotate_{field}" for field in ("name", "tags", "notes", "starred")}
FILLED = "annotate_filled"  # (run id, stored values) the annotation boxes were last filled from


def follow_link(requested: str | None) -> None:
    """Select the run the address names when it is a link (a first visit, or an address this page
    did not write); otherwise the picked run stays. A link that names no run selects nothing, so
    another run is never shown in its place."""
    if requested is None or (requested == st.session_state.get(WRITTEN) and PICKED in st.session_state):
        return
    st.session_state[PICKED] = parse_run_id(requested)
    st.session_state[WRITTEN] = requested


def pick_run(token: tuple) -> int | None:
    """The run picker: the newest runs plus the selected one however old (a link to run 5 works
    with thousands of newer runs); a selected id that no longer exists stays listed as such, so
    the page says so instead of switching to another run."""
    current = st.session_state.get(PICKED)
    labels = dict(run_choices(token, include=[] if current is None else [current]))
    if current is not None and current not in labels:
        labels[current] = f"#{current} (does not exist)"
    if not labels:
        return None
    if PICKED not in st.session_state:  # no link: the newest run
        st.session_state[PICKED] = max(labels)
    return st.selectbox(
        "run",
        sorted(labels, reverse=True),
        index=None,
        key=PICKED,
        format_func=lambda run_id: labels.get(run_id, str(run_id)),
        placeholder="choose a run",
    )


def explain_nothing_shown(requested: str | None, any_runs: bool) -> None:
    if requested is not None and parse_run_id(requested) is None:
        st.error(
            f"The address asks for run “{md_escape(requested)}”, which is not a run id "
            "(a whole number, as in ?run=5): choose a run above."
        )
    elif not any_runs:
        st.info("No runs yet: launch one from the Launch page.")
    else:
        st.info("Choose a run above.")


# --- actions ---------------------------------------------------------------------------


def act(key: str, run_id: int) -> None:
    """A button's callback: dashboard.actions applies it (checking read-only mode and the password on
    the server, as for the Runs page); its messages are kept for this run's page to show."""
    messages = actions.apply(key, [run_id], sessions(), settings(), st.session_state.get(PASSWORD_KEY))
    st.session_state[MESSAGES] = (run_id, messages)
    st.session_state.pop(CONFIRM, None)


def ask(key: str, run_id: int) -> None:
    st.session_state[CONFIRM] = (key, run_id)


def show_messages(run_id: int) -> None:
    """What the last action said, while this run is shown (the page redraws every tick, so they
    stay until the next action); after "Run again", a link to the new run."""
    about, messages = st.session_state.get(MESSAGES, (None, []))
    if about != run_id:
        return
    for kind, text in messages:
        getattr(st, kind)(md_escape(text))
        made = RERUN_MADE.search(text)
        if made:
            st.page_link(PAGE, label=f"Open run {made[1]}", query_params={"run": made[1]})


def confirm(action: actions.Action, run_id: int) -> None:
    st.warning(action.question(f"run {run_id}"))
    yes, no = st.columns(2)
    yes.button(
        f"Yes, {action.label.rstrip('…').lower()}",
        key="run_confirm_yes",
        type="primary",
        on_click=act,
        args=(action.key, run_id),
    )
    no.button("No, leave it", key="run_confirm_no", on_click=st.session_state.pop, args=(CONFIRM, None))


def action_buttons(run: RunInfo) -> None:
    """The actions that apply to the run's status; those with a question ask it first."""
    offered = {action.key: action for action in actions.applicable([run.status])}
    row = st.container(horizontal=True)
    for action in offered.values():
        row.button(
            action.label,
            key=f"run_action_{action.key}",
            on_click=ask if action.confirm else act,
            args=(action.key, run.id),
        )
    asked = st.session_state.get(CONFIRM)
    if asked and asked[1] == run.id and asked[0] in offered:
        confirm(offered[asked[0]], run.id)


# --- name, tags, notes, star -------------------------------------------------------------


def stored_annotation(run: RunInfo) -> dict:
    """The run's annotation as the form's boxes hold it (tags comma-separated)."""
    return {"name": run.name, "tags": ", ".join(run.tags), "notes": run.notes or "", "starred": run.starred}


def fill_annotation_boxes(run: RunInfo) -> None:
    """Fill the boxes from the store when another run is shown, when the stored values changed (saved
    here or elsewhere) or when the boxes were cleared by a page switch; otherwise what is being typed
    stays, through live refreshes and refused saves alike."""
    stored = stored_annotation(run)
    if st.session_state.get(FILLED) != (run.id, stored) or ANNOTATION_KEYS["name"] not in st.session_state:
        for field, key in ANNOTATION_KEYS.items():
            st.session_state[key] = stored[field]
        st.session_state[FILLED] = (run.id, stored)


def save_annotation(run_id: int) -> None:
    """The form's callback: dashboard.actions checks read-only mode and the password on the server,
    then the values (a refused field is named and nothing is stored)."""
    typed = {field: st.session_state.get(key) for field, key in ANNOTATION_KEYS.items()}
    messages = actions.annotate(
        run_id,
        sessions(),
        settings(),
        st.session_state.get(PASSWORD_KEY),
        name=typed["name"] or "",
        tags=typed["tags"] or "",
        notes=typed["notes"] or "",
        starred=bool(typed["starred"]),
    )
    st.session_state[MESSAGES] = (run_id, messages)


def annotation_form(run: RunInfo) -> None:
    """Rename, tag, note and star the run: metadata, so its results never change, whatever its status."""
    fill_annotation_boxes(run)
    with st.expander("Name, tags, notes and star"), st.form("annotate", border=False):
        st.text_input("name", key=ANNOTATION_KEYS["name"], max_chars=queue.MAX_NAME)
        st.text_input(
            "tags",
            key=ANNOTATION_KEYS["tags"],
            placeholder="baseline, e1",
            help=f"Comma separated, at most {queue.MAX_TAGS}; each {queue.TAG_RULE} (stored lower-case).",
        )
        st.text_area("notes", key=ANNOTATION_KEYS["notes"], max_chars=queue.MAX_NOTES)
        st.checkbox("★ starred", key=ANNOTATION_KEYS["starred"])
        st.form_submit_button("Save", key="annotate_save", on_click=save_annotation, args=(run.id,))


def annotations(run: RunInfo) -> None:
    """The run's tags and notes as text (escaped: they are whatever people typed)."""
    if run.tags:
        st.caption("tags: " + ", ".join(md_escape(tag) for tag in run.tags))
    if run.notes:
        st.markdown(md_escape(run.notes).replace("\n", "  \n"))  # keep the notes' line breaks


# --- the run ---------------------------------------------------------------------------


def header(run: RunInfo, token: tuple) -> None:
    st.subheader(md_escape(("★ " if run.starred else "") + run.label))
    figures = st.columns(5)
    figures[0].metric("status", run.status)
    figures[1].metric("steps", run.summary.get("steps", run.progress_step) or 0)
    end = run.finished_at or datetime.now(timezone.utc)
    elapsed = (end - run.started_at).total_seconds() if run.started_at else None
    figures[2].metric("elapsed s", "-" if elapsed is None else f"{elapsed:.1f}")
    figures[3].metric("attempts", run.attempts)
    figures[4].metric("group", md_escape(run.group or "-"))  # metric values render markdown
    moments = [
        f"{what} {moment:%Y-%m-%d %H:%M:%S} UTC"
        for what, moment in (("started", run.started_at), ("finished", run.finished_at))
        if moment
    ]
    st.caption(md_escape(", ".join([f"worker {run.worker or '-'}", *moments])))
    annotations(run)
    origin(run, token)


def origin(run: RunInfo, token: tuple) -> None:
    """Where a "Run again" came from: a link to that run, or a note that it has been deleted."""
    if run.rerun_of is None:
        return
    if run_infos([run.rerun_of], token):
        st.page_link(PAGE, label=f"run again from #{run.rerun_of}", query_params={"run": str(run.rerun_of)})
    else:
        st.caption(md_escape(f"run again from #{run.rerun_of} (deleted)"))


def failure(run: RunInfo) -> None:
    """The error, and the worker's last log lines for this run (stored with it, so they can be
    read from any machine)."""
    if run.error:
        st.error("This run failed:")
        st.code(run.error, language=None)
    if run.log_tail:
        with st.expander("worker log (last lines)"):
            st.code(run.log_tail, language=None)


def curves(run: RunInfo) -> None:
    """Every recorded curve, by step and by seconds."""
    points = points_for([run])
    present = sorted(points["metric"].unique()) if len(points) else []
    tasks = {str(run.config.get("task"))}
    for metric in present:
        label = charts.metric_label(metric, tasks)
        left, right = st.columns(2)
        for place, x in ((left, "step"), (right, "seconds")):
            lines = charts.lines_for(points, [run], metric, x)
            place.plotly_chart(
                charts.curve_figure(lines, charts.chart_title(label, x), x, label),
                key=f"run_{metric}_{x}",
                width="stretch",
            )
    if not present:
        st.caption("No points recorded yet.")


def summary_and_config(run: RunInfo) -> None:
    """The summary as a table of labelled figures with units (st.table renders markdown, so every
    cell is escaped: paths and unknown keys are shown as written); the config as stored."""
    summary, config = st.columns(2)
    summary.markdown("**Summary**")
    rows = summary_rows(run.summary, run.config.get("task"))
    if rows:
        cells = [(md_escape(label), md_escape(value)) for label, value in rows]
        summary.table(pd.DataFrame(cells, columns=["figure", "value"]), hide_index=True)
    else:
        summary.caption(no_summary_text(run.status))
    config.markdown("**Config**")
    config.json(run.config)


@live_view
def show(run_id: int, token: tuple) -> None:
    """The run as stored now, from caches keyed by the change token (see follow_changes)."""
    show_messages(run_id)
    found = run_infos([run_id], token)
    if not found:
        st.warning(f"Run {run_id} does not exist (it may have been deleted).")
        return
    [run] = found
    header(run, token)
    if not settings().readonly:  # read-only: no buttons (and dashboard.actions refuses on the server too)
        action_buttons(run)
        annotation_form(run)
    failure(run)
    curves(run)
    series_figures(run, "run_series")
    summary_and_config(run)
    st.page_link("app_pages/compare.py", label="Compare this run with others", query_params={"runs": str(run.id)})


st.title("Run")
requested = st.query_params.get("run")
follow_link(requested)
token = watch()
run_id = pick_run(token)
if run_id is None:
    explain_nothing_shown(requested, any_runs=bool(run_choices(token)))
    st.stop()
st.query_params["run"] = str(run_id)
st.session_state[WRITTEN] = str(run_id)
show(run_id, token)
follow_changes(token)
