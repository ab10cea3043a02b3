"""What the Compare page computes from runs and their points (plain functions, no Streamlit):
the figures and the summary tables. The page draws them; the benchmark times them."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import plotly.graph_objects as go

from dashboard import charts, tables
from dashboard.queries import RunInfo
from db.run_config import RunConfig

GROUP_FIELDS = tuple(field for field in RunConfig.model_fields if field != "name")
METRICS = ("accuracy", "test_accuracy", "loss", "test_mse")
# The default view draws every metric against the chosen x, so the x switch visibly changes the
# charts and series runs (no accuracy) get a full view; E1's three plots are one click away.
VIEWS = {"metrics": "every metric vs the x axis", "e1": "E1: three plots"}
DEFAULT_VIEW = "metrics"


@dataclass(frozen=True)
class Chart:
    """One chart to draw: a metric (or, with y_column "step", the step count) against an x axis,
    for some of the runs. `key` names what the chart shows, never where it sits on the page, so a
    refresh updates the same Plotly chart in place."""

    key: str
    metric: str
    x: str
    label: str
    runs: tuple[RunInfo, ...]
    title: str = ""
    y_column: str = "value"


def _time_axis(x: str) -> str:
    return "wall" if x == "wall" else "seconds"


def _task(run: RunInfo) -> str:
    return str(run.config.get("task"))


def _steps_chart(runs, x: str) -> Chart:
    """Steps against time: how fast each run trains (the loss curve has a point at every step)."""
    return Chart("steps", "loss", x, "step", tuple(runs), "Steps over time", y_column="step")


def _metric_chart(key: str, metric: str, x: str, runs, tasks: set[str], name_task: bool = False) -> Chart:
    label = charts.metric_label(metric, tasks, name_task)
    return Chart(key, metric, x, label, tuple(runs), charts.chart_title(label, x))


def _per_task(runs, points, metric: str) -> dict[str, list[RunInfo]]:
    """The runs holding `metric`, by task: a metric means something else per task (the MNIST loss
    is a cross-entropy, the series loss an MSE), so tasks never share its axis."""
    holding = set(points.loc[points["metric"] == metric, "run_id"])
    by_task: dict[str, list[RunInfo]] = {}
    for run in runs:
        if run.id in holding:
            by_task.setdefault(_task(run), []).append(run)
    return by_task


def _metric_charts(runs, points, x: str) -> list[Chart]:
    """Every metric once, against x (split per task when its runs span several), after the steps
    over time when x is a time (against the step, steps would be a diagonal)."""
    present = set(points["metric"].unique())
    ordered = [metric for metric in METRICS if metric in present] + sorted(present - set(METRICS))
    found = [_steps_chart(runs, x)] if x != "step" else []
    for metric in ordered:
        by_task = _per_task(runs, points, metric)
        if len(by_task) == 1:
            found.append(_metric_chart(metric, metric, x, runs, set(by_task)))
        else:
            found += [
                _metric_chart(f"{metric}_{task}", metric, x, members, {task}, name_task=True)
                for task, members in sorted(by_task.items())
            ]
    return found


def _e1_charts(runs, x: str) -> list[Chart]:
    """SPEC E1's three plots: steps over time, accuracy over time and accuracy by step. Their axes
    are fixed by E1; the x choice only picks the clock of the two time charts (seconds unless
    wall clock is chosen)."""
    time = _time_axis(x)
    return [
        _steps_chart(runs, time),
        _metric_chart("accuracy_time", "accuracy", time, runs, set()),
        _metric_chart("accuracy_step", "accuracy", "step", runs, set()),
    ]


def _figure(points, chart: Chart, state: dict):
    """The chart's figure, or None when none of its runs has points for it. Smoothing applies to
    metrics, not to step counts; log y only to losses and errors."""
    lines = charts.lines_for(
        points, chart.runs, chart.metric, chart.x, state["group"] or None, state["band"], y_column=chart.y_column
    )
    if not lines:
        return None
    is_metric = chart.y_column == "value"
    return charts.curve_figure(
        lines,
        chart.title,
        chart.x,
        chart.label,
        state["smooth"] if is_metric else 0.0,
        state["log"] and is_metric and charts.is_loss_like(chart.metric),
    )


def build_figures(runs: list[RunInfo], points, state: dict) -> list[tuple[str, go.Figure]]:
    """(key, figure) pairs of the view state["view"] (VIEWS; DEFAULT_VIEW when absent), leaving
    out charts none of the runs has points for."""
    if not len(points):
        return []
    if state.get("view", DEFAULT_VIEW) == "e1":
        wanted = _e1_charts(runs, state["x"])
    else:
        wanted = _metric_charts(runs, points, state["x"])
    figures = [(chart.key, _figure(points, chart, state)) for chart in wanted]
    return [(key, figure) for key, figure in figures if figure is not None]


def summaries(runs: list[RunInfo], points, state: dict):
    """The per-run table and, when grouping, the per-group table, with speed ratios."""
    per_run = tables.summary_table(runs, points, state["target"])
    per_group = tables.group_table(runs, per_run, state["group"]) if state["group"] else None
    baseline = state["baseline"] or None
    per_run = tables.add_speed_ratio(per_run, "run", baseline)
    if per_group is not None:
        per_group = tables.add_speed_ratio(per_group, "group", baseline)
    return per_run, per_group


@dataclass(frozen=True)
class Comparison:
    """Everything the Compare page draws for one set of runs and view settings. Built once and
    shared by every viewer of the same link (see dashboard.state.comparison_for): treat as read-only."""

    runs: tuple[RunInfo, ...]
    points: pd.DataFrame
    figures: tuple[tuple[str, go.Figure], ...]
    per_run: pd.DataFrame
    per_group: pd.DataFrame | None
    sentences: tuple[str, ...]
    diff: pd.DataFrame


def compare(runs: list[RunInfo], points: pd.DataFrame, state: dict) -> Comparison:
    """The figures, the summary tables with their speed sentences, and the config diff."""
    per_run, per_group = summaries(runs, points, state)
    label_column, table = ("group", per_group) if per_group is not None else ("run", per_run)
    sentences = tables.speed_sentences(table, label_column, state["baseline"] or None)
    return Comparison(
        tuple(runs),
        points,
        tuple(build_figures(runs, points, state)),
        per_run,
        per_group,
        tuple(sentences),
        tables.config_diff(runs),
    )
