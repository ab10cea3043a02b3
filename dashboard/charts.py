"""Chart builders: plain functions from metric points to Plotly figures (no Streamlit here).

The pipeline for one chart:

    points (long table) --lines_for--> one Line per run, or per group of runs (mean + band)
          --curve_figure--> EMA smoothing (debiased; the raw line stays faintly behind),
                            MinMaxLTTB downsampling (each bucket keeps its min and max), traces

`points` is a pandas DataFrame with one row per stored value: run_id, metric, step,
seconds (the run's clock, 0 at the end of step 1), wall (epoch seconds: started_at +
seconds) and value. Trace names are HTML-escaped: Plotly renders a small set of HTML tags
in legend text, and run names are user text.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative
from tsdownsample import MinMaxLTTBDownsampler

METRIC_LABELS = {"loss": "loss", "accuracy": "batch accuracy", "test_accuracy": "test accuracy", "test_mse": "test MSE"}
LOSS_KINDS = {"mnist": "cross-entropy", "series": "MSE"}  # what "loss" means per task
LOSS_MARKERS = ("loss", "mse", "mae")  # a metric whose name holds one is a loss or an error
X_AXES = {"step": "step", "seconds": "seconds since first step", "wall": "wall clock"}
X_COLUMNS = {"step": "step", "seconds": "seconds", "wall": "wall"}
BANDS = {"minmax": "min to max", "std": "mean ± 1 std"}
MAX_POINTS = 2000
CHART_POINTS = 16_000  # points per line shrink when many runs are overlaid (20 runs: 800 each)
MIN_POINTS = 500
DASHES = ("solid", "dash", "dot", "dashdot")
COLORS = qualitative.Plotly


@dataclass(frozen=True)
class Line:
    """One line to draw: a run, or the mean of a group of runs with a band (low..high)."""

    label: str
    x: np.ndarray
    y: np.ndarray
    low: np.ndarray | None = None
    high: np.ndarray | None = None
    runs: int = 1


# --- transforms ------------------------------------------------------------------------


def ema(values: npt.ArrayLike, weight: float) -> np.ndarray:
    """Exponential moving average with debiasing, as TensorBoard draws it.

    s_t = weight * s_{t-1} + (1 - weight) * y_t with s = 0 before the first value, divided by
    (1 - weight ** n) after n values, so the start is not pulled towards zero. NaN values
    stay NaN and do not enter the average. weight 0 returns the values unchanged.
    """
    values = np.asarray(values, dtype=float)
    if weight <= 0:
        return values.copy()
    finite = np.isfinite(values)
    # pandas' adjusted EWM is exactly this debiased average (weights w^k over the finite values
    # seen so far), computed in C: a Python loop here costs a second on 20 long runs.
    smoothed = (
        pd.Series(np.where(finite, values, np.nan))
        .ewm(alpha=1 - weight, adjust=True, ignore_na=True)
        .mean()
        .to_numpy(copy=True)
    )
    smoothed[~finite] = np.nan
    return smoothed


def downsample(x: np.ndarray, y: np.ndarray, max_points: int = MAX_POINTS) -> np.ndarray:
    """Indices of at most `max_points` points that keep each bucket's min and max (MinMaxLTTB).

    Non-finite values are dropped first; short lines are returned whole.
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    finite = np.flatnonzero(np.isfinite(y) & np.isfinite(x))
    if len(finite) <= max_points:
        return finite
    xs, ys = x[finite], y[finite]
    if np.all(np.diff(xs) >= 0):
        chosen = MinMaxLTTBDownsampler().downsample(xs, ys, n_out=max_points)
    else:  # the downsampler needs a sorted x; fall back to positions
        chosen = MinMaxLTTBDownsampler().downsample(ys, n_out=max_points)
    return finite[np.asarray(chosen, dtype=np.int64)]


def aggregate(frames: Sequence[pd.DataFrame], band: str = "minmax") -> pd.DataFrame:
    """Align runs on their step: mean x and y per step, and the band's low and high.

    Each frame has columns step, x, y. band "minmax" spans the runs' min to max;
    "std" spans the mean ± one (population) standard deviation.
    """
    stacked = pd.concat(frames, ignore_index=True)
    grouped = stacked.groupby("step", sort=True)
    out = pd.DataFrame({"x": grouped["x"].mean(), "y": grouped["y"].mean()})
    if band == "std":
        spread = grouped["y"].std(ddof=0).fillna(0.0)
        out["low"], out["high"] = out["y"] - spread, out["y"] + spread
    else:
        out["low"], out["high"] = grouped["y"].min(), grouped["y"].max()
    return out.reset_index()


def group_value(config: Mapping[str, Any], field: str) -> str:
    value = config.get(field)
    return "not set" if value is None else str(value)


def lines_for(
    points: pd.DataFrame,
    runs: Sequence[Any],
    metric: str,
    x_axis: str = "step",
    group_by: str | None = None,
    band: str = "minmax",
    y_column: str = "value",
) -> list[Line]:
    """The lines of one chart: one per run, or with `group_by` (a config field) one per group.

    `runs` are objects with id, label and config (dashboard.queries.RunInfo), in the order
    the lines should be drawn. y_column "step" draws the step against x (steps vs seconds).
    """
    curve = points[points["metric"] == metric] if len(points) else points
    by_run = dict(tuple(curve.groupby("run_id", sort=False))) if len(curve) else {}
    per_run = {}
    for run in runs:
        rows = by_run.get(run.id)
        if rows is not None and len(rows):
            per_run[run.id] = pd.DataFrame(
                {
                    "step": rows["step"].to_numpy(),
                    "x": rows[X_COLUMNS[x_axis]].to_numpy(dtype=float),
                    "y": rows[y_column].to_numpy(dtype=float),
                }
            )
    if not group_by:
        return [
            Line(run.label, frame["x"].to_numpy(), frame["y"].to_numpy())
            for run in runs
            if (frame := per_run.get(run.id)) is not None
        ]
    groups: dict[str, list[pd.DataFrame]] = {}
    for run in runs:
        if run.id in per_run:
            groups.setdefault(group_value(run.config, group_by), []).append(per_run[run.id])
    lines = []
    for value, frames in groups.items():
        table = aggregate(frames, band)
        lines.append(
            Line(
                f"{group_by}={value}",
                table["x"].to_numpy(),
                table["y"].to_numpy(),
                table["low"].to_numpy(),
                table["high"].to_numpy(),
                runs=len(frames),
            )
        )
    return lines


# --- figures ---------------------------------------------------------------------------


def _rgba(color: str, alpha: float) -> str:
    red, green, blue = (int(color[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({red},{green},{blue},{alpha})"


def _x_values(x: np.ndarray, x_axis: str):
    """What the x axis gets: datetimes on the wall clock, else the compact array of _compact."""
    return pd.to_datetime(x, unit="s", utc=True) if x_axis == "wall" else _compact(x)


def _compact(values: np.ndarray) -> np.ndarray:
    """A plotted array as the browser needs it: whole numbers (steps) as integers, which plotly
    sends as 1 to 4-byte typed arrays, anything else as float32, half of float64's bytes. Float32's
    7 significant digits are far finer than a chart's pixels or its hover labels; the figure JSON
    of 20 long runs shrinks about 2.5 times, which every viewer downloads and decodes."""
    values = np.asarray(values)
    finite = np.isfinite(values)
    if finite.all() and len(values) and np.abs(values).max() < 2**31 and np.array_equal(values, np.round(values)):
        return values.astype(np.int64)
    return values.astype(np.float32)


def _layout(
    figure: go.Figure, title: str, x_title: str, y_title: str, log_y: bool = False, dates: bool = False
) -> go.Figure:
    """Shared looks; the legend sits under the x axis (lower when date ticks take two lines)."""
    figure.update_layout(
        title=html.escape(title),
        xaxis_title=x_title,
        yaxis_title=y_title,
        template="plotly_white",
        height=400 if dates else 380,
        margin=dict(l=60, r=20, t=50, b=50),
        hovermode="x unified",
        showlegend=True,
        legend=dict(orientation="h", yanchor="top", y=-0.3 if dates else -0.18),
    )
    if log_y:
        figure.update_yaxes(type="log")
    return figure


def curve_figure(
    lines: Sequence[Line],
    title: str,
    x_axis: str = "step",
    y_title: str = "",
    smoothing: float = 0.0,
    log_y: bool = False,
    max_points: int = MAX_POINTS,
) -> go.Figure:
    """Overlay `lines`: per line a band (groups of several runs), a faint raw line when
    smoothing, and the (smoothed) line itself; at most `max_points` points per trace, fewer
    when many lines share the chart (a chart is never more than CHART_POINTS wide)."""
    figure = go.Figure()
    max_points = max(MIN_POINTS, min(max_points, CHART_POINTS // max(1, len(lines))))
    for index, line in enumerate(lines):
        color = COLORS[index % len(COLORS)]
        dash = DASHES[index % len(DASHES)]  # identical curves (static vs dynamic by step) stay visible
        name = html.escape(line.label) + (f" ({line.runs} runs)" if line.runs > 1 else "")
        group = f"line{index}"
        if line.low is not None and line.high is not None and line.runs > 1:
            low, high = ema(line.low, smoothing), ema(line.high, smoothing)
            keep = np.union1d(downsample(line.x, low, max_points), downsample(line.x, high, max_points))
            x = _x_values(line.x[keep], x_axis)
            figure.add_scatter(
                x=x,
                y=_compact(high[keep]),
                mode="lines",
                line=dict(width=0),
                legendgroup=group,
                showlegend=False,
                hoverinfo="skip",
                name=name + " high",
            )
            figure.add_scatter(
                x=x,
                y=_compact(low[keep]),
                mode="lines",
                line=dict(width=0),
                fill="tonexty",
                fillcolor=_rgba(color, 0.18),
                legendgroup=group,
                showlegend=False,
                hoverinfo="skip",
                name=name + " low",
            )
        if smoothing > 0:
            keep = downsample(line.x, line.y, max_points)
            figure.add_scatter(
                x=_x_values(line.x[keep], x_axis),
                y=_compact(line.y[keep]),
                mode="lines",
                line=dict(color=color, width=1),
                opacity=0.25,
                legendgroup=group,
                showlegend=False,
                hoverinfo="skip",
                name=name + " raw",
            )
        y = ema(line.y, smoothing)
        keep = downsample(line.x, y, max_points)
        figure.add_scatter(
            x=_x_values(line.x[keep], x_axis),
            y=_compact(y[keep]),
            mode="lines" if len(keep) > 1 else "markers",
            line=dict(color=color, width=2, dash=dash),
            legendgroup=group,
            name=name,
        )
    return _layout(figure, title, X_AXES[x_axis], y_title, log_y, dates=x_axis == "wall")


def by_value_figure(frame: pd.DataFrame, title: str, x_title: str, y_title: str, band: str = "minmax") -> go.Figure:
    """A figure runs have once each (a summary figure) against a config value: a line per `line`
    value through the mean `y` at each `x`, with a marker at every x. Where several runs share an
    x (seed repeats) error bars span them (the band: min to max, or ± 1 std), so a repeat shows
    as spread rather than as a zigzag.

    `frame` has columns line, x, y and run (a run's label, named in the point's hover); rows with
    no x or no y are left out. Labels are user text, so they are escaped like trace names.
    """
    figure = go.Figure()
    frame = frame.dropna(subset=["x", "y"])
    for index, (line, rows) in enumerate(frame.groupby("line", sort=True)):
        by_x = rows.groupby("x", sort=True)
        mean = by_x["y"].mean()
        if band == "std":
            spread = by_x["y"].std(ddof=0).fillna(0.0)
            low, high = mean - spread, mean + spread
        else:
            low, high = by_x["y"].min(), by_x["y"].max()
        names = by_x["run"].agg(lambda labels: "<br>".join(html.escape(str(label)) for label in labels))
        repeated = bool((by_x.size() > 1).any())
        figure.add_scatter(
            x=mean.index.to_numpy(dtype=float),
            y=mean.to_numpy(),
            mode="lines+markers",
            name=html.escape(str(line)),
            line=dict(color=COLORS[index % len(COLORS)], width=2, dash=DASHES[index % len(DASHES)]),
            error_y=dict(type="data", symmetric=False, array=high - mean, arrayminus=mean - low, visible=repeated),
            text=names.to_numpy(),
            hovertemplate="%{y:.4g}<br>%{text}",
        )
    figure = _layout(figure, title, x_title, y_title)
    figure.update_layout(hovermode="closest")  # runs, not a shared step, make up each point
    return figure


def is_loss_like(metric: str) -> bool:
    """Whether a metric is a loss or an error (positive, falling over orders of magnitude): the
    only charts a log scale helps. Accuracy lives in 0..1, where a log axis only garbles the ticks."""
    return any(marker in metric.lower() for marker in LOSS_MARKERS)


def metric_label(metric: str, tasks: set[str], name_task: bool = False) -> str:
    """The axis label of a metric. A loss says what it measures when the runs share a task (the
    MNIST loss is a cross-entropy, the series loss an MSE); `name_task` adds the task, for charts
    split per task."""
    notes = []
    if metric == "loss" and len(tasks) == 1:
        notes += [LOSS_KINDS[task] for task in tasks if task in LOSS_KINDS]
    if name_task:
        notes += sorted(str(task) for task in tasks)
    label = METRIC_LABELS.get(metric, metric)
    return f"{label} ({', '.join(notes)})" if notes else label


def chart_title(y_label: str, x_axis: str) -> str:
    """ "Batch accuracy vs seconds since first step"."""
    return f"{y_label[:1].upper()}{y_label[1:]} vs {X_AXES[x_axis]}"


# --- series (SPEC E5) ------------------------------------------------------------------


def series_instance_figure(series: Mapping[str, Any], label: str) -> go.Figure | None:
    """The test instance, its targets (shifted one step) and the model's predictions."""
    instance = series.get("instance") or {}
    inputs, targets, predictions = (instance.get(key) or [] for key in ("inputs", "targets", "predictions"))
    if not inputs:
        return None
    figure = go.Figure()
    figure.add_scatter(
        x=list(range(len(inputs))), y=inputs, mode="lines+markers", name="instance", line=dict(color="#1f77b4")
    )
    figure.add_scatter(
        x=list(range(1, len(targets) + 1)),
        y=targets,
        mode="markers",
        name="targets",
        marker=dict(symbol="star", size=11, color="#2ca02c"),
    )
    figure.add_scatter(
        x=list(range(1, len(predictions) + 1)),
        y=predictions,
        mode="markers",
        name="predictions",
        marker=dict(symbol="x", size=9, color="#d62728"),
    )
    return _layout(figure, f"{label}: test instance", "time step", "value")


def rollout_figure(series: Mapping[str, Any], label: str, seed_length: int = 20) -> go.Figure | None:
    """Generative rollouts: the seed (zeros or a real window), then the model's own predictions."""
    rollouts = series.get("rollouts") or {}
    if not rollouts:
        return None
    figure = go.Figure()
    for index, (name, values) in enumerate(rollouts.items()):
        figure.add_scatter(
            x=list(range(len(values))),
            y=values,
            mode="lines",
            name=f"seed: {html.escape(name)}",
            line=dict(color=COLORS[index % len(COLORS)]),
        )
    figure.add_vline(
        x=seed_length - 0.5,
        line_dash="dot",
        line_color="grey",
        annotation_text="generated →",
        annotation_position="top right",
    )
    return _layout(figure, f"{label}: generative rollout", "time step", "value")
