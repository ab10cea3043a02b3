"""Compare runs: overlaid curves (every metric against the chosen x, or E1's three plots), per-run
and per-group summaries with speed ratios, a config diff, series figures, and exports. The
selection and settings live in the URL (?runs=3,4&x=seconds&smooth=0.6&group=mode) so a link
restores the view; everything drawn from the runs' data refreshes itself, so the page shows
what is true now (a run that finishes updates, a deleted one leaves with a message)."""

import streamlit as st

from dashboard import charts, export, sharing, tables
from dashboard.comparison import GROUP_FIELDS, VIEWS, Comparison
from dashboard.state import comparison_for, follow_changes, run_choices, run_infos, watch
from dashboard.ui import md_escape, series_figures

KEYS = {name: f"cmp_{name}" for name in sharing.DEFAULTS}


def missing_runs(run_ids, runs) -> list[str]:
    """A sentence per selected id the database does not hold (any more)."""
    found = {run.id for run in runs}
    return [f"run {run_id} does not exist (deleted?)" for run_id in run_ids if run_id not in found]


def seed_state(token) -> list[str]:
    """Seed the widgets from the URL when it holds a view this session did not write (a shared
    link, or the Runs page's selection), else keep them (or restore them after a page switch).
    Runs that do not exist are dropped from the selection; returns what was left out, and why."""
    params = st.query_params.to_dict()
    from_url = bool(params) and params != st.session_state.get("cmp_written")
    saved = st.session_state.get("cmp_saved", sharing.DEFAULTS)
    state = sharing.from_query(params, GROUP_FIELDS) if from_url else saved
    for name, key in KEYS.items():
        if from_url or key not in st.session_state:
            st.session_state[key] = state[name]
    chosen = st.session_state[KEYS["runs"]]
    runs = run_infos(chosen, token)
    st.session_state[KEYS["runs"]] = [run.id for run in runs]
    return missing_runs(chosen, runs) + (state.problems if from_url else [])


def write_state() -> dict:
    state = {name: st.session_state[key] for name, key in KEYS.items()}
    st.session_state["cmp_saved"] = state
    query = sharing.to_query(state)
    if query != st.query_params.to_dict():
        st.query_params.from_dict(query)
    st.session_state["cmp_written"] = query
    return state


def baseline_choices(runs, group_field: str) -> list[str]:
    """Grouped tables compare groups: a single run is no baseline there."""
    if group_field:
        return [""] + sorted({f"{group_field}={charts.group_value(run.config, group_field)}" for run in runs})
    return [""] + [run.label for run in runs]


def settings_widgets(runs) -> None:
    """The view's settings; each widget's key is its URL parameter's (see KEYS)."""
    group_field = st.session_state[KEYS["group"]]
    baselines = baseline_choices(runs, group_field)
    if st.session_state[KEYS["baseline"]] not in baselines:
        st.session_state[KEYS["baseline"]] = ""
    axes = st.columns([3, 4])
    axes[0].radio(
        "view",
        list(VIEWS),
        key=KEYS["view"],
        format_func=VIEWS.get,
        horizontal=True,
        help="E1's plots: steps over time, accuracy over time and accuracy by step.",
    )
    axes[1].radio(
        "x axis",
        list(charts.X_AXES),
        key=KEYS["x"],
        format_func=charts.X_AXES.get,
        horizontal=True,
        help="In E1's view it picks the clock of the two time charts (seconds unless wall clock).",
    )
    view = st.columns([3, 1, 2])
    view[0].slider(
        "EMA smoothing",
        0.0,
        0.99,
        step=0.01,
        key=KEYS["smooth"],
        help="Exponential moving average, debiased at the start; the raw curve stays faintly behind.",
    )
    view[1].checkbox("log y", key=KEYS["log"], help="On losses and errors only (accuracy and steps stay linear).")
    view[2].number_input(
        "target accuracy",
        0.01,
        1.0,
        step=0.01,
        key=KEYS["target"],
        help="For 'steps to target' and 'seconds to target'.",
    )
    grouping = st.columns([2, 2, 3])
    grouping[0].selectbox(
        "group by",
        ("",) + GROUP_FIELDS,
        key=KEYS["group"],
        format_func=lambda field: field or "(each run)",
        help="One line per value of a config field: the mean over its runs, with a band (seed repeats).",
    )
    grouping[1].radio(
        "band",
        list(charts.BANDS),
        key=KEYS["band"],
        format_func=charts.BANDS.get,
        horizontal=True,
        disabled=not group_field,
    )
    grouping[2].selectbox(
        "speed baseline",
        baselines,
        key=KEYS["baseline"],
        format_func=lambda label: label or "(none)",
        help="A run or group: 'speed vs baseline' is its ms per step over each row's (2 = twice as fast).",
    )


def draw_charts(figures) -> None:
    """Two charts a row; each chart's key names what it shows, so a refresh redraws it in place."""
    if not figures:
        st.info("The selected runs have no points yet.")
    for start in range(0, len(figures), 2):
        for column, (key, figure) in zip(st.columns(2), figures[start : start + 2]):
            column.plotly_chart(figure, key=f"chart_{key}", width="stretch")


def draw_summary(view: Comparison, state: dict) -> None:
    """The summary tables with their speed sentences, and the config diff."""
    st.header("Summary")
    for sentence in view.sentences:
        st.markdown("- " + md_escape(sentence))
    if view.per_group is not None:
        st.subheader("Per group")
        st.dataframe(tables.highlight_best(view.per_group), hide_index=True, key="summary_groups", placeholder="")
        st.subheader("Per run")
    st.dataframe(tables.highlight_best(view.per_run), hide_index=True, key="summary_runs", placeholder="")
    st.caption(
        f"Best value of each column highlighted. Steps and seconds to target: the first batch whose "
        f"accuracy reaches {state['target']:g}."
    )
    st.header("Config differences")
    if len(view.runs) < 2:
        st.caption("Select two runs or more to see how their configs differ.")
    elif view.diff.empty:
        st.caption("The selected runs share every config field (other than the name).")
    else:
        st.dataframe(view.diff, key="config_diff")


def draw_exports(view: Comparison) -> None:
    """Every point as CSV, and the page's own figures and tables as a standalone HTML report."""
    report_tables = [("Per group", view.per_group, False)] if view.per_group is not None else []
    report_tables += [("Per run", view.per_run, False), ("Config differences", view.diff, True)]
    st.header("Export")
    exports = st.container(horizontal=True)
    exports.download_button(
        "Points (CSV)",
        lambda: export.points_csv(view.points, view.runs),
        file_name="unroll-points.csv",
        mime="text/csv",
        key="export_csv",
        on_click="ignore",
    )
    exports.download_button(
        "Report (HTML)",
        key="export_html",
        file_name="unroll-report.html",
        mime="text/html",
        on_click="ignore",
        data=lambda: export.html_report(
            "Unroll comparison", [figure for _, figure in view.figures], report_tables, list(view.sentences)
        ),
    )


def draw(view: Comparison, state: dict) -> None:
    """Everything drawn from the runs' data, from one comparison shared by every viewer of the link."""
    draw_charts(view.figures)
    draw_summary(view, state)
    if any(run.summary.get("series") for run in view.runs):
        st.header("Series: test instance and generative rollout")
    for run in view.runs:
        series_figures(run, "series")
    draw_exports(view)


st.title("Compare")
token = watch()
left_out = seed_state(token)
if left_out:
    st.warning(md_escape("Left out of this view: " + "; ".join(left_out) + "."))
labels = dict(run_choices(token, include=st.session_state[KEYS["runs"]]))
st.multiselect(
    "runs",
    list(labels),
    key=KEYS["runs"],
    format_func=lambda run_id: labels.get(run_id, str(run_id)),
    placeholder="choose runs (or select them on the Runs page)",
)
settings_widgets(run_infos(st.session_state[KEYS["runs"]], token))
current = write_state()
if current["runs"]:
    draw(comparison_for(token, current), current)
else:
    st.info("Choose runs above, or select rows on the Runs page and press 'Compare selected'.")
follow_changes(token)
