"""What the Compare page computes from runs and their points (plain functions, no Streamlit):
the figures and the summary tables. The page draws them; the benchmark times them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from dashboard import charts, reproduce, tables
from dashboard.queries import RunInfo
from db.run_config import RunConfig
from db.summary import RunSummary

GROUP_FIELDS = tuple(field for field in RunConfig.model_fields if field != "name")
METRICS = ("accuracy", "test_accuracy", "loss", "test_mse")
# The default view draws every metric against the chosen x, so the x switch visibly changes the
# charts and series runs (no accuracy) get a full view; E1's three plots are one click away.
VIEWS = {"metrics": "every metric vs the x axis", "e1": "E1: three plots", "e2": "E2: cost vs sequence length"}
DEFAULT_VIEW = "metrics"
# SPEC E2's charts: (key, summary figure, y label, title), each against the sequence length.
E2_CHARTS = (
    ("trace_by_length", "trace_seconds", "trace time (s)", "Trace time (graph build, first step) vs sequence length"),
    ("memory_by_length", "memory_growth_mb", "memory growth (MiB)", "Memory growth during the run vs sequence length"),
    ("step_ms_by_length", "median_step_ms", "ms per step (median)", "Milliseconds per step vs sequence length"),
)
SEQUENCE_AXIS = "sequence length (time steps)"
MNIST_ROWS = 28  # an MNIST image is read as 28 time steps (rows); only series windows vary


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


def sequence_length(config: Mapping[str, Any]) -> int | None:
    """The time steps a run unrolled over: a series run's window (n_steps), MNIST's 28 rows."""
    if config.get("task") == "series":
        length = config.get("n_steps")
        return length if isinstance(length, int) and not isinstance(length, bool) else None
    return MNIST_ROWS


def _e2_line_fields(runs, group: str) -> list[str]:
    """The config fields that tell E2's lines apart: the field the page groups by, else every field
    the runs differ in but the sequence length (the x axis) and the seed (repeats share a line):
    "mode" for E2's own runs, "cell" and "mode" for a grid of both; "mode" when nothing differs."""
    if group and group != "n_steps":
        return [group]
    differing = [
        field
        for field in GROUP_FIELDS
        if field not in ("n_steps", "seed") and len({repr(run.config.get(field)) for run in runs}) > 1
    ]
    return differing or ["mode"]


def e2_table(runs, points, group: str = "") -> pd.DataFrame:
    """One row per run: its line, sequence length (x) and E2's figures from its summary. Ms per step
    comes from the curve when the summary lacks it (a running run), as in the summary table."""
    fields, rows = _e2_line_fields(runs, group), []
    for run in runs:
        figures = RunSummary.from_stored(run.summary)
        step_ms = figures.median_step_ms
        rows.append(
            {
                "run": run.label,
                "line": " ".join(f"{field}={charts.group_value(run.config, field)}" for field in fields),
                "x": sequence_length(run.config),
                "trace_seconds": figures.trace_seconds,
                "memory_growth_mb": figures.memory_growth_mb,
                "median_step_ms": step_ms if step_ms is not None else tables.median_step_ms(points, run.id),
            }
        )
    columns = ["run", "line", "x", *(figure for _, figure, _, _ in E2_CHARTS)]
    return pd.DataFrame(rows, columns=columns)


def _e2_figures(runs, points, state: dict) -> list[tuple[str, go.Figure]]:
    """SPEC E2's charts: trace time, memory growth and ms per step against the sequence length, a
    point per run and a line per mode, so what static unrolling costs shows as growth with T. A
    chart none of the runs has a figure for (all still queued, say) is left out. Smoothing and log
    do not apply (no curves); the band setting spans seed repeats."""
    table = e2_table(runs, points, state.get("group", ""))
    found = []
    for key, figure, label, title in E2_CHARTS:
        rows = table[["run", "line", "x", figure]].rename(columns={figure: "y"}).dropna(subset=["x", "y"])
        if len(rows):
            found.append((key, charts.by_value_figure(rows, title, SEQUENCE_AXIS, label, state.get("band", "minmax"))))
    return found


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
    out charts none of the runs has points (or, in E2's view, summary figures) for."""
    if state.get("view", DEFAULT_VIEW) == "e2":
        return _e2_figures(runs, points, state)
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
    # When the runs are one preset's group: the write-up's figure next to today's (see dashboard.reproduce).
    reproduction: tuple[str, ...] = ()


def compare(runs: list[RunInfo], points: pd.DataFrame, state: dict) -> Comparison:
    """The figures, the summary tables with their verdicts (speed and test accuracy against the
    baseline, each with its 95% interval), the write-up's figure for a preset's group, and the config diff."""
    per_run, per_group = summaries(runs, points, state)
    label_column, table = ("group", per_group) if per_group is not None else ("run", per_run)
    group_field = state["group"] if per_group is not None else None
    sentences = reproduce.sentences(runs, points, list(table[label_column]), group_field, state["baseline"] or None)
    return Comparison(
        tuple(runs),
        points,
        tuple(build_figures(runs, points, state)),
        per_run,
        per_group,
        tuple(sentences),
        tables.config_diff(runs),
        reproduce.against_write_up(runs, points),
    )
