"""What the Compare page computes from runs and their points (plain functions, no Streamlit):
the figures and the summary tables. The page draws them; the benchmark times them."""

from __future__ import annotations

from dashboard import charts, tables
from dashboard.queries import RunInfo
from db.run_config import RunConfig

GROUP_FIELDS = tuple(field for field in RunConfig.model_fields if field != "name")
METRICS = ("accuracy", "test_accuracy", "loss", "test_mse")


def _time_axis(x: str) -> str:
    return "wall" if x == "wall" else "seconds"


def build_figures(runs: list[RunInfo], points, state: dict) -> list[tuple[str, object]]:
    """(key, figure) pairs: steps over time, then each metric against the chosen x and its companion."""
    group, band, smooth, log_y = state["group"] or None, state["band"], state["smooth"], state["log"]
    tasks = {run.config.get("task") for run in runs}
    time_axis = _time_axis(state["x"])
    companion = "step" if state["x"] != "step" else "seconds"
    figures = []
    if len(points):
        lines = charts.lines_for(points, runs, "loss", time_axis, group, band, y_column="step")
        figures.append(("steps", charts.curve_figure(lines, "Steps over time", time_axis, "step")))
    present = set(points["metric"].unique()) if len(points) else set()
    for metric in [m for m in METRICS if m in present] + sorted(present - set(METRICS)):
        label = charts.metric_label(metric, tasks)
        for x in (state["x"], companion):
            lines = charts.lines_for(points, runs, metric, x, group, band)
            figures.append((f"{metric}_{x}", charts.curve_figure(lines, charts.chart_title(label, x), x, label,
                                                                 smooth, log_y)))
    return figures


def summaries(runs: list[RunInfo], points, state: dict):
    """The per-run table and, when grouping, the per-group table, with speed ratios."""
    per_run = tables.summary_table(runs, points, state["target"])
    per_group = tables.group_table(runs, per_run, state["group"]) if state["group"] else None
    baseline = state["baseline"] or None
    per_run = tables.add_speed_ratio(per_run, "run", baseline)
    if per_group is not None:
        per_group = tables.add_speed_ratio(per_group, "group", baseline)
    return per_run, per_group
