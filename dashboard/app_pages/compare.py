"""Compare runs: overlaid curves (E1's three plots and more), per-run and per-group summaries
with speed ratios, a config diff, series figures, and exports. The selection and settings
live in the URL (?runs=3,4&x=seconds&smooth=0.6&group=mode) so a link restores the view."""

import streamlit as st

from dashboard import charts, export, sharing, tables
from dashboard.comparison import GROUP_FIELDS, build_figures, summaries
from dashboard.queries import ACTIVE
from dashboard.state import points_for, run_choices, run_infos
from dashboard.ui import md_escape, series_figures

KEYS = {name: f"cmp_{name}" for name in sharing.DEFAULTS}
REFRESH_SECONDS = 3


def seed_state(run_ids: set[int]) -> None:
    """Seed the widgets from the URL when it holds a view this session did not write (a shared
    link, or the Runs page's selection), else keep them (or restore them after a page switch)."""
    params = st.query_params.to_dict()
    from_url = bool(params) and params != st.session_state.get("cmp_written")
    saved = st.session_state.get("cmp_saved", sharing.DEFAULTS)
    state = sharing.from_query(params, GROUP_FIELDS) if from_url else saved
    for name, key in KEYS.items():
        if from_url or key not in st.session_state:
            st.session_state[key] = state[name]
    st.session_state[KEYS["runs"]] = [run_id for run_id in st.session_state[KEYS["runs"]] if run_id in run_ids]


def write_state() -> dict:
    state = {name: st.session_state[key] for name, key in KEYS.items()}
    st.session_state["cmp_saved"] = state
    query = sharing.to_query(state)
    if query != st.query_params.to_dict():
        st.query_params.from_dict(query)
    st.session_state["cmp_written"] = query
    return state


st.title("Compare")
choices = run_choices()
labels = dict(choices)
seed_state(set(labels))

st.multiselect("runs", list(labels), key=KEYS["runs"], format_func=lambda run_id: labels.get(run_id, str(run_id)),
               placeholder="choose runs (or select them on the Runs page)")
runs = run_infos(st.session_state[KEYS["runs"]])
group_field = st.session_state[KEYS["group"]]
if group_field:  # grouped tables compare groups: a single run is no baseline there
    baselines = [""] + sorted({f"{group_field}={charts.group_value(run.config, group_field)}" for run in runs})
else:
    baselines = [""] + [run.label for run in runs]
if st.session_state[KEYS["baseline"]] not in baselines:
    st.session_state[KEYS["baseline"]] = ""

view = st.columns([3, 3, 1, 2])
view[0].radio("x axis", list(charts.X_AXES), key=KEYS["x"], format_func=charts.X_AXES.get, horizontal=True)
view[1].slider("EMA smoothing", 0.0, 0.99, step=0.01, key=KEYS["smooth"],
               help="Exponential moving average, debiased at the start; the raw curve stays faintly behind.")
view[2].checkbox("log y", key=KEYS["log"])
view[3].number_input("target accuracy", 0.01, 1.0, step=0.01, key=KEYS["target"],
                     help="For 'steps to target' and 'seconds to target'.")
grouping = st.columns([2, 2, 3])
grouping[0].selectbox("group by", ("",) + GROUP_FIELDS, key=KEYS["group"],
                      format_func=lambda field: field or "(each run)",
                      help="One line per value of a config field: the mean over its runs, with a band (seed repeats).")
grouping[1].radio("band", list(charts.BANDS), key=KEYS["band"], format_func=charts.BANDS.get, horizontal=True,
                  disabled=not group_field)
grouping[2].selectbox("speed baseline", baselines, key=KEYS["baseline"], format_func=lambda label: label or "(none)",
                      help="A run or group: 'speed vs baseline' is its ms per step over each row's "
                           "(2 = twice as fast).")
state = write_state()


def show(run_ids: list[int], refresh: bool) -> None:
    """Everything drawn from the runs' data; redrawn every few seconds while one is queued or running."""
    runs = run_infos(run_ids)
    if refresh and not any(run.status in ACTIVE for run in runs):
        st.rerun(scope="app")  # all finished: one last full redraw, without the timer
    points = points_for(runs)
    figures = build_figures(runs, points, state)
    if not figures:
        st.info("The selected runs have no points yet.")
    for start in range(0, len(figures), 2):
        for column, (key, figure) in zip(st.columns(2), figures[start:start + 2]):
            column.plotly_chart(figure, key=f"chart_{key}", width="stretch")

    st.header("Summary")
    per_run, per_group = summaries(runs, points, state)
    label_column, table = ("group", per_group) if per_group is not None else ("run", per_run)
    sentences = tables.speed_sentences(table, label_column, state["baseline"] or None)
    for sentence in sentences:
        st.markdown("- " + md_escape(sentence))
    if per_group is not None:
        st.subheader("Per group")
        st.dataframe(tables.highlight_best(per_group), hide_index=True, key="summary_groups", placeholder="")
        st.subheader("Per run")
    st.dataframe(tables.highlight_best(per_run), hide_index=True, key="summary_runs", placeholder="")
    st.caption(f"Best value of each column highlighted. Steps and seconds to target: the first batch whose "
               f"accuracy reaches {state['target']:g}.")

    diff = tables.config_diff(runs)
    st.header("Config differences")
    if len(runs) < 2:
        st.caption("Select two runs or more to see how their configs differ.")
    elif diff.empty:
        st.caption("The selected runs share every config field (other than the name).")
    else:
        st.dataframe(diff, key="config_diff")

    if any(run.summary.get("series") for run in runs):
        st.header("Series: test instance and generative rollout")
    for run in runs:
        series_figures(run, "series")

    st.header("Export")
    report_tables = [("Per group", per_group, False)] if per_group is not None else []
    report_tables += [("Per run", per_run, False), ("Config differences", diff, True)]
    exports = st.container(horizontal=True)
    exports.download_button("Points (CSV)", lambda: export.points_csv(points, runs), file_name="unroll-points.csv",
                            mime="text/csv", key="export_csv", on_click="ignore")
    exports.download_button(
        "Report (HTML)", key="export_html", file_name="unroll-report.html", mime="text/html", on_click="ignore",
        data=lambda: export.html_report("Unroll comparison", [figure for _, figure in figures], report_tables,
                                        sentences))


if not runs:
    st.info("Choose runs above, or select rows on the Runs page and press 'Compare selected'.")
else:
    active = any(run.status in ACTIVE for run in runs)
    st.fragment(run_every=REFRESH_SECONDS if active else None)(show)([run.id for run in runs], active)
