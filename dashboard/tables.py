"""Comparison tables: per-run and per-group figures, speed ratios, config diffs (no Streamlit).

Every function takes plain data (RunInfo-like objects, the long points table of
dashboard.charts) and returns a pandas DataFrame or a string, so it is unit-tested alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from dashboard.charts import group_value
from db.summary import RunSummary

# Columns where a lower value is better, and where a higher one is: highlighted as best.
LOWER_IS_BETTER = ("steps to target", "seconds to target", "ms per step", "test MSE", "trace s", "peak MB")
HIGHER_IS_BETTER = ("test accuracy", "speed vs baseline")
NUMERIC = (
    "runs",
    "steps",
    "steps to target",
    "seconds to target",
    "ms per step",
    "speed vs baseline",
    "test accuracy",
    "test MSE",
    "trace s",
    "peak MB",
    "parameters",
)
WHOLE = ("runs", "steps", "steps to target", "parameters")


def first_reaching(
    points: pd.DataFrame, run_id: int, target: float, metric: str = "accuracy"
) -> tuple[int | None, float | None]:
    """(step, seconds) of the first point of `metric` at or above `target`, or (None, None)."""
    rows = points[(points["run_id"] == run_id) & (points["metric"] == metric)] if len(points) else points
    reached = rows[rows["value"] >= target] if len(rows) else rows
    if not len(reached):
        return None, None
    first = reached.sort_values("step").iloc[0]
    return int(first["step"]), float(first["seconds"])


def median_step_ms(points: pd.DataFrame, run_id: int, metric: str = "loss") -> float | None:
    """Median milliseconds per step from a curve's clock (used when the summary lacks it)."""
    rows = points[(points["run_id"] == run_id) & (points["metric"] == metric)] if len(points) else points
    if len(rows) < 2:
        return None
    rows = rows.sort_values("step")
    per_step = np.diff(rows["seconds"].to_numpy()) / np.diff(rows["step"].to_numpy())
    return float(np.median(per_step) * 1000)


def _by_run(points: pd.DataFrame, metric: str) -> dict[Any, pd.DataFrame]:
    """One metric's rows, split by run in one pass: masking the whole long table once per run
    cost a third of a second for 20 runs of 20,000 points."""
    if not len(points):
        return {}
    return dict(tuple(points[points["metric"] == metric].groupby("run_id", sort=False)))


def summary_table(runs: Sequence[Any], points: pd.DataFrame, target: float = 0.9) -> pd.DataFrame:
    """One row per run: the figures to compare, from its summary and (as a fallback) its curves.

    The summary is read with `RunSummary.from_stored`: a figure stored with the wrong type is empty."""
    rows = []
    accuracy = _by_run(points, "accuracy")
    for run in runs:
        figures, config = RunSummary.from_stored(run.summary), run.config or {}
        step, seconds = first_reaching(accuracy.get(run.id, points.iloc[:0]), run.id, target)
        rows.append(
            {
                "run": run.label,
                "group": run.group,
                "status": run.status,
                "task": config.get("task"),
                # A summary's steps (even null); the run's progress when its summary has none.
                "steps": figures.steps if "steps" in figures.model_fields_set else run.progress_step,
                "steps to target": step,
                "seconds to target": seconds,
                "ms per step": (
                    figures.median_step_ms if figures.median_step_ms is not None else median_step_ms(points, run.id)
                ),
                "test accuracy": figures.test_accuracy,
                "test MSE": figures.test_mse,
                "trace s": figures.trace_seconds,
                "peak MB": figures.peak_memory_mb,
                "parameters": figures.parameters,
                "data source": figures.data_source,
            }
        )
    table = pd.DataFrame(
        rows,
        columns=[
            "run",
            "group",
            "status",
            "task",
            "steps",
            "steps to target",
            "seconds to target",
            "ms per step",
            "test accuracy",
            "test MSE",
            "trace s",
            "peak MB",
            "parameters",
            "data source",
        ],
    )
    numeric = [column for column in NUMERIC if column in table]
    table[numeric] = table[numeric].apply(pd.to_numeric, errors="coerce").astype(float)
    return table


def group_table(runs: Sequence[Any], table: pd.DataFrame, field: str) -> pd.DataFrame:
    """The per-run table averaged over the groups of a config field (one row per value)."""
    keyed = table.assign(**{field: [group_value(run.config or {}, field) for run in runs]})
    numeric = [column for column in NUMERIC if column in keyed and column != "runs"]
    grouped = keyed.groupby(field, sort=True)
    out = grouped[numeric].mean(numeric_only=False)
    out.insert(0, "runs", grouped.size())
    return out.reset_index().rename(columns={field: "group"}).assign(group=lambda f: f"{field}=" + f["group"])


def add_speed_ratio(table: pd.DataFrame, label_column: str, baseline: str | None) -> pd.DataFrame:
    """Add "speed vs baseline": the baseline's ms per step over each row's (2.0 = twice as fast)."""
    out = table.copy()
    out["speed vs baseline"] = np.nan
    if baseline is None or baseline not in set(out[label_column]):
        return out
    base_ms = out.loc[out[label_column] == baseline, "ms per step"].iloc[0]
    if base_ms is None or not np.isfinite(base_ms):
        return out
    ms = pd.to_numeric(out["ms per step"], errors="coerce")
    out["speed vs baseline"] = base_ms / ms
    return out


def speed_sentences(table: pd.DataFrame, label_column: str, baseline: str | None) -> list[str]:
    """ "static is 1.4x faster than dynamic" for every row against the baseline."""
    sentences = []
    for label, ratio in zip(table[label_column], table.get("speed vs baseline", [])):
        if label == baseline or ratio is None or not np.isfinite(ratio) or ratio <= 0:
            continue
        if ratio >= 1:
            sentences.append(f"{label} is {ratio:.2f}x faster than {baseline}")
        else:
            sentences.append(f"{label} is {1 / ratio:.2f}x slower than {baseline}")
    return sentences


def best_rows(table: pd.DataFrame) -> dict[str, list[int]]:
    """For each comparable column whose values differ, the row positions holding its best value."""
    best = {}
    for column in LOWER_IS_BETTER + HIGHER_IS_BETTER:
        if column not in table:
            continue
        values = pd.to_numeric(table[column], errors="coerce")
        if values.notna().sum() < 2 or values.nunique() < 2:
            continue
        target = values.min() if column in LOWER_IS_BETTER else values.max()
        best[column] = [index for index, value in enumerate(values) if value == target]
    return best


def highlight_best(table: pd.DataFrame):
    """A pandas Styler marking each column's best value(s) in bold green; empty columns left out."""
    table = table.dropna(axis=1, how="all")
    best = best_rows(table)

    def style(column: pd.Series) -> list[str]:
        rows = set(best.get(column.name, []))
        return ["background-color: #d4f4dd; font-weight: bold" if index in rows else "" for index in range(len(column))]

    formats = {column: "{:,.0f}" if column in WHOLE else "{:.4g}" for column in NUMERIC if column in table}
    return table.style.apply(style, axis=0).format(formats, na_rep="")


def config_diff(runs: Sequence[Any]) -> pd.DataFrame:
    """Config fields whose values differ across the runs: one row per field, one column per run."""
    fields: list[str] = []
    for run in runs:
        fields += [name for name in (run.config or {}) if name not in fields and name != "name"]
    differing = [field for field in fields if len({repr((run.config or {}).get(field)) for run in runs}) > 1]
    data = {run.label: [_shown((run.config or {}).get(field)) for field in differing] for run in runs}
    return pd.DataFrame(data, index=pd.Index(differing, name="field"), dtype=str)


def _shown(value: Any) -> str:
    return "not set" if value is None else str(value)
