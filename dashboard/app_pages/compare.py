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
VERDICT_NOTE = (
    "Speed: the baseline's median ms per step over the row's, from each run's step clock, with a 95% "
    "bootstrap interval over seed repeats and over the steps within each run (1,000 resamples, seeded: the "
    "same runs give the same interval). It can differ slightly from the table's 'speed vs baseline', which "
    "uses the medians the runs stored. Test accuracy: the mean over runs, its interval over seed repeats. "
    "An interval that includes no difference means this machine cannot tell the two apart."
)


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
        help="E1's plots: steps over time, accuracy over time and accuracy by step. E2's: trace time, "
        "memory growth and ms per step against the sequence length, a point per run and a line per mode "
        "(the x axis, smoothing and log y do not apply there).",
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
    """The write-up's figure beside today's (a preset's group), the verdicts against the baseline,
    the summary tables and the config diff."""
    st.header("Summary")
    for line in view.reproduction:
        st.info(md_escape(line))
    for sentence in view.sentences:
        st.markdown("- " + md_escape(sentence))
    if view.sentences or view.reproduction:
        st.caption(VERDICT_NOTE)
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


def draw_exports(view: Comparison, state: dict) -> None:
    """Every point with the runs' configs, a standalone HTML report of the page, and the summary as a
    Markdown table to copy. Each export says what the runs were and how the page showed them."""
    st.header("Export")
    exports = st.container(horizontal=True)
    exports.download_button(
        "Points and configs (ZIP)",
        lambda: export.points_zip(view.points, view.runs),
        file_name="unroll-points.zip",
        mime="application/zip",
        key="export_zip",
        on_click="ignore",
        help=export.ZIP_HELP,
    )
    exports.download_button(
        "Report (HTML)",
        key="export_html",
        file_name="unroll-report.html",
        mime="text/html",
        on_click="ignore",
        data=lambda: export.comparison_report(view, state),
        help="The charts and tables of this page in one file that opens without a server, with the view "
        "settings, each run's data, machine (CPU, cores, TensorFlow) and full config.",
    )
    st.subheader("Copy as table")
    markdown_table(export.summary_markdown(view))


@st.fragment
def markdown_table(text: str) -> None:
    """The summary as Markdown, drawn only when asked for: a code block makes the browser load and
    start its syntax highlighter, about a second of its main thread on a 2-core machine that every
    view of the page paid before its charts were drawn (python -m dashboard.bench --browser). A
    fragment, so showing it reruns only this."""
    shown = st.toggle(
        "Show the summary as Markdown",
        key="export_markdown",
        help="For an issue or a paper's draft: the button at the code block's corner copies it.",
    )
    if shown:
        st.code(text, language="markdown")


def draw(view: Comparison, state: dict) -> None:
    """Everything drawn from the runs' data, from one comparison shared by every viewer of the link."""
    draw_charts(view.figures)
    draw_summary(view, state)
    if any(run.summary.get("series") for run in view.runs):
        st.header("Series: test instance and generative rollout")
    for run in view.runs:
        series_figures(run, "series")
    draw_exports(view, state)


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
