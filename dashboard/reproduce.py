"""The Compare page's verdicts, from runs and their points (plain functions, no Streamlit).

dashboard.verdict does the statistics and the words; this module decides what they are applied
to: which runs stand on each side of a summary row, each run's per-step times (from its stored
clock) and test accuracy, and, when the selected runs are one preset's group, the write-up's
figure next to the one measured here, with the TensorFlow version, device and data the runs
recorded. Everything is a pure function of the runs and points: the Comparison that holds the
sentences is built once and shared by every viewer (dashboard.state.comparison_for).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from dashboard import verdict
from dashboard.charts import group_value
from dashboard.summary import data_origin
from db.presets import PRESETS, Contrast, Preset
from db.summary import RunSummary

CLOCK_METRIC = "loss"  # recorded at every step of every task: its clock gives the step times


def step_times(points: pd.DataFrame) -> dict[int, np.ndarray]:
    """Each run's milliseconds per step, from the seconds of its loss points (E1's clock: graph
    building and evaluations are not counted). Points recorded every k steps give k-step means."""
    if not len(points):
        return {}
    # numpy columns, not a filtered frame: 20 runs of 20,000 points are copied once, not per column type
    clock = (points["metric"] == CLOCK_METRIC).to_numpy(dtype=bool)
    run_ids = points["run_id"].to_numpy()[clock]
    steps = points["step"].to_numpy(dtype=float)[clock]
    seconds = points["seconds"].to_numpy(dtype=float)[clock]
    order = np.lexsort((steps, run_ids))
    run_ids, steps, seconds = run_ids[order], steps[order], seconds[order]
    with np.errstate(divide="ignore", invalid="ignore"):
        per_step = np.diff(seconds) * 1000.0 / np.diff(steps)
    starts = np.flatnonzero(np.r_[True, run_ids[1:] != run_ids[:-1]])
    ends = np.r_[starts[1:], len(run_ids)]
    # the differences inside a run are per_step[start:end - 1]; the one across two runs is left out
    return {int(run_ids[start]): per_step[start : end - 1] for start, end in zip(starts, ends)}


def sides(runs: Sequence[Any], field: str | None) -> dict[str, list[Any]]:
    """The runs each summary row stands for, by the row's label: each run alone, or, grouped by a
    config field, the runs of each value (labelled as dashboard.tables.group_table labels them)."""
    if not field:
        return {run.label: [run] for run in runs}
    members: dict[str, list[Any]] = {}
    for run in runs:
        members.setdefault(f"{field}={group_value(run.config or {}, field)}", []).append(run)
    return members


def test_accuracies(runs: Sequence[Any]) -> list[float]:
    """The test accuracy of each run that has one (series runs and unfinished ones have none)."""
    found = (RunSummary.from_stored(run.summary).test_accuracy for run in runs)
    return [value for value in found if value is not None]


def judge(
    subject: Sequence[Any], baseline: Sequence[Any], times: dict[int, np.ndarray]
) -> tuple[verdict.SpeedRatio | None, verdict.Difference | None]:
    """The speed ratio and the test-accuracy difference of two sides of runs (None where not measurable)."""
    ratio = verdict.speed_ratio(
        [times[run.id] for run in subject if run.id in times], [times[run.id] for run in baseline if run.id in times]
    )
    return ratio, verdict.difference(test_accuracies(subject), test_accuracies(baseline))


def sentences(
    runs: Sequence[Any], points: pd.DataFrame, labels: Sequence[str], field: str | None, baseline: str | None
) -> list[str]:
    """A verdict per summary row against the baseline row, in the table's order: its speed with a
    95% interval (over seed repeats and steps), and its test accuracy difference."""
    members = sides(runs, field)
    if not baseline or baseline not in members:
        return []
    # sorted once: every row's verdict reads the baseline's times again
    times = {run_id: np.sort(values) for run_id, values in step_times(points).items()}
    found = []
    for label in labels:
        if label == baseline or label not in members:
            continue
        sentence = verdict.row_sentence(label, baseline, *judge(members[label], members[baseline], times))
        if sentence:
            found.append(sentence)
    return found


# --- the write-up's figure next to today's ------------------------------------------------


def preset_of(runs: Sequence[Any]) -> Preset | None:
    """The preset whose group every run belongs to: the Launch page names a preset's group
    "<preset> <time>", the command line "<preset>"."""
    groups = {run.group for run in runs}
    if len(groups) != 1:
        return None
    group = groups.pop() or ""
    return next((p for p in PRESETS.values() if group == p.name or group.startswith(p.name + " ")), None)


def environment(runs: Sequence[Any]) -> str:
    """What the figures were measured on, as the runs recorded it: "TensorFlow 2.21.0, CPU (x86_64),
    2 cores, data: offline" (values joined by " / " when the runs disagree; what no run recorded,
    such as the cores of runs from before summary version 2, is left out)."""
    summaries = [RunSummary.from_stored(run.summary) for run in runs]
    versions = sorted({s.tensorflow for s in summaries if s.tensorflow})
    devices = sorted({s.device for s in summaries if s.device})
    cores = sorted({s.cpu_cores for s in summaries if s.cpu_cores})
    data = sorted({data_origin(s.data_source)[0] for s in summaries if s.data_source})
    parts = [
        f"TensorFlow {' / '.join(versions)}" if versions else "",
        " / ".join(devices),
        f"{' / '.join(map(str, cores))} {'core' if cores == [1] else 'cores'}" if cores else "",
        f"data: {' / '.join(data)}" if data else "",
    ]
    return ", ".join(part for part in parts if part)


def _contrast_text(contrast: Contrast, runs: Sequence[Any], points: pd.DataFrame) -> str:
    """The preset's question answered here: the subject's speed against the baseline's, with its
    interval and what it rests on, then the test accuracies."""
    subject = [run for run in runs if group_value(run.config or {}, contrast.field) == contrast.subject]
    baseline = [run for run in runs if group_value(run.config or {}, contrast.field) == contrast.baseline]
    if not subject or not baseline:
        return ""
    ratio, found = judge(subject, baseline, step_times(points))
    parts = []
    if ratio is not None:
        claim = verdict.speed_claim(contrast.subject, contrast.baseline, ratio)
        parts.append(f"{claim}, {verdict.runs_text(ratio.runs)}")
    if found is not None:
        parts.append(f"test accuracy {verdict.difference_text(found)}")
    return "; ".join(parts)


def _run_figure(runs: Sequence[Any]) -> str:
    """The test figure of one preset config's runs: "test accuracy 95.10%", "test MSE 0.0412 (mean of
    3 runs [0.0380, 0.0440])"."""
    summaries = [RunSummary.from_stored(run.summary) for run in runs]
    accuracies = [s.test_accuracy for s in summaries if s.test_accuracy is not None]
    errors = [s.test_mse for s in summaries if s.test_mse is not None]
    name, values, shown = (
        ("test accuracy", accuracies, verdict.percent) if accuracies else ("test MSE", errors, lambda v: f"{v:.3g}")
    )
    if not values:
        return ""
    mean, low, high = verdict.mean_interval(values)
    if low is None or high is None:
        return f"{name} {shown(mean)}"
    return f"{name} {shown(mean)} (mean of {len(values)} runs [{shown(low)}, {shown(high)}])"


def _figures_text(preset: Preset, runs: Sequence[Any]) -> str:
    """For a preset that asks no two-sided question (E5): each of its configs' test figure."""
    parts = []
    for config in preset.configs:
        name = str(config["name"])
        mine = [run for run in runs if run.name == name or run.name.startswith(name + " ")]
        figure = _run_figure(mine)
        if figure:
            parts.append(f"{name} {figure}")
    return "; ".join(parts)


def against_write_up(runs: Sequence[Any], points: pd.DataFrame) -> tuple[str, ...]:
    """When the runs are one preset's group and SPEC gives the write-up's figure: that figure and the
    one measured here, side by side. Nothing otherwise (a preset with no published figure included)."""
    preset = preset_of(runs)
    if preset is None or not preset.published:
        return ()
    here = _contrast_text(preset.contrast, runs, points) if preset.contrast else _figures_text(preset, runs)
    measured = "; ".join(part for part in (here or "nothing measured yet", environment(runs)) if part)
    return (f"{preset.title}. The write-up: {preset.published}. Here: {measured}.",)
