"""One run: status, error, every curve, summary, config and series figures (?run=ID)."""

from datetime import datetime, timezone

import streamlit as st

from dashboard import charts
from dashboard.queries import ACTIVE
from dashboard.state import points_for, run_choices, run_infos
from dashboard.ui import md_escape, series_figures

REFRESH_SECONDS = 2

st.title("Run")
choices = run_choices()
labels = dict(choices)
requested = st.query_params.get("run", "")
if requested.isdigit() and int(requested) in labels and requested != st.session_state.get("run_written"):
    st.session_state["run_id"] = int(requested)
if not labels:
    st.info("No runs yet: launch one from the Launch page.")
    st.stop()
run_id = st.selectbox("run", list(labels), key="run_id", format_func=labels.get)
st.query_params["run"] = str(run_id)
st.session_state["run_written"] = str(run_id)


def show(run_id: int, refresh: bool) -> None:
    [run] = run_infos([run_id])
    if refresh and run.status not in ACTIVE:
        st.rerun(scope="app")  # finished: redraw once more, without the timer
    st.subheader(md_escape(run.label))
    figures = st.columns(5)
    figures[0].metric("status", run.status)
    figures[1].metric("steps", run.summary.get("steps", run.progress_step) or 0)
    end = run.finished_at or datetime.now(timezone.utc)
    elapsed = (end - run.started_at).total_seconds() if run.started_at else None
    figures[2].metric("elapsed s", "-" if elapsed is None else f"{elapsed:.1f}")
    figures[3].metric("attempts", run.attempts)
    figures[4].metric("group", run.group or "-")
    moments = [f"{what} {moment:%Y-%m-%d %H:%M:%S} UTC" for what, moment in
               (("started", run.started_at), ("finished", run.finished_at)) if moment]
    st.caption(md_escape(", ".join([f"worker {run.worker or '-'}", *moments])))
    if run.error:
        st.error("This run failed:")
        st.code(run.error, language=None)
    points = points_for([run])
    present = sorted(points["metric"].unique()) if len(points) else []
    tasks = {run.config.get("task")}
    for metric in present:
        label = charts.metric_label(metric, tasks)
        left, right = st.columns(2)
        for place, x in ((left, "step"), (right, "seconds")):
            lines = charts.lines_for(points, [run], metric, x)
            place.plotly_chart(charts.curve_figure(lines, charts.chart_title(label, x), x, label),
                               key=f"run_{metric}_{x}", width="stretch")
    if not present:
        st.caption("No points recorded yet.")
    series_figures(run, "run_series")
    summary, config = st.columns(2)
    summary.markdown("**Summary**")
    figures_only = {key: value for key, value in run.summary.items() if key != "series"}
    if figures_only:
        summary.json(figures_only)
    else:
        summary.caption("None yet: a summary is written when the run ends.")
    config.markdown("**Config**")
    config.json(run.config)
    st.page_link("app_pages/compare.py", label="Compare this run with others", query_params={"runs": str(run.id)})


[current] = run_infos([run_id])
active = current.status in ACTIVE
st.fragment(run_every=REFRESH_SECONDS if active else None)(show)(run_id, active)
