"""The run config: the one contract shared by the dashboard, the queue and the worker.

Every run starts life as a `RunConfig`. The dashboard builds its form from it, the
queue refuses to store a config that does not validate, and the worker validates the
stored JSON again before executing it (a row edited by hand cannot make the worker do
anything the schema does not allow).

It is also the one statement of the run's vocabulary (the names below, as tuples for
code that lists them) and of the rules for combining fields (`combination_problems`),
which the form, the command line and the worker all go through. The network library
(rnncore.nn) may not import this module, so it states its own names and its layer-level
rules; tests/rnncore/nn/test_network.py checks that both agree name for name and refuse
every layer combination with the same words.

This module imports neither TensorFlow nor Streamlit, so any process can afford it.
"""

from __future__ import annotations

import math
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, Literal, NamedTuple, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

Task = Literal["mnist", "series"]
Cell = Literal["rnn", "lstm", "gru", "sru"]
Mode = Literal["static", "dynamic"]
Implementation = Literal["unroll", "keras"]
Optimizer = Literal["adam", "sgd", "rmsprop"]
Activation = Literal["tanh", "relu"]
Head = Literal["last", "last3"]

TASKS: tuple[str, ...] = get_args(Task)
CELLS: tuple[str, ...] = get_args(Cell)
MODES: tuple[str, ...] = get_args(Mode)
IMPLEMENTATIONS: tuple[str, ...] = get_args(Implementation)
OPTIMIZERS: tuple[str, ...] = get_args(Optimizer)
ACTIVATIONS: tuple[str, ...] = get_args(Activation)
HEADS: tuple[str, ...] = get_args(Head)

MAX_HIDDEN_UNITS = 4096
MAX_LAYERS = 16
MAX_BATCH_SIZE = 65536
MAX_STEPS = 10_000_000
MAX_EPOCHS = 10_000
MAX_LEARNING_RATE = 10.0
MAX_SEED = 2**31 - 1
MAX_TRAIN_EXAMPLES = 10_000_000
MAX_SERIES_STEPS = 1000


class RunConfig(BaseModel):
    """Everything that defines one training run; identical configs give identical curves.

    Unknown keys are refused rather than dropped, and types are not coerced
    (`"32"` is not a number of hidden units): a config that validates means what it says.
    """

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    name: str = Field(min_length=1, max_length=200, description="A label for the run.")
    task: Task = Field("mnist", description="mnist: 28 rows as 28 time steps; series: next-value prediction.")
    cell: Cell = Field("lstm", description="The recurrent cell.")
    mode: Mode = Field("static", description="static: one cell copy per step; dynamic: a while loop.")
    implementation: Implementation = Field(
        "unroll", description="unroll: Unroll's own cells; keras: Keras's built-in layers, as a peer."
    )
    hidden_units: int = Field(32, ge=1, le=MAX_HIDDEN_UNITS, description="Units per layer.")
    layers: int = Field(1, ge=1, le=MAX_LAYERS, description="Stacked recurrent layers.")
    activation: Activation = Field("tanh", description="Basic RNN activation (rnn cell only).")
    sru_highway: bool = Field(True, description="SRU highway connection (sru cell only).")
    bidirectional: bool = Field(False, description="Run each layer forward and backward.")
    residual: bool = Field(False, description="Residual connections between layers of equal width.")
    keep_prob: float = Field(1.0, gt=0.0, le=1.0, description="Dropout keep probability on layer inputs.")
    swap_memory: bool = Field(False, description="Let the dynamic loop swap activations to host memory.")
    batch_size: int = Field(128, ge=1, le=MAX_BATCH_SIZE, description="Examples per training step.")
    learning_rate: float = Field(0.01, gt=0.0, le=MAX_LEARNING_RATE, description="Optimizer step size.")
    optimizer: Optimizer = Field("adam", description="The optimizer.")
    clip_norm: float | None = Field(None, gt=0.0, description="Clip gradients to this global norm.")
    target_accuracy: float | None = Field(
        None, gt=0.0, le=1.0, description="Stop at the first batch whose training accuracy reaches this."
    )
    max_steps: int | None = Field(None, ge=1, le=MAX_STEPS, description="Stop after this many steps.")
    epochs: int | None = Field(None, ge=1, le=MAX_EPOCHS, description="Stop after this many epochs.")
    seed: int = Field(0, ge=0, le=MAX_SEED, description="Fixes data order and initial weights.")
    head: Head = Field("last", description="MNIST head: the last step's output, or the last 3 concatenated (E4).")
    train_subset: int | None = Field(
        None, ge=1, le=MAX_TRAIN_EXAMPLES, description="Train on only this many examples (E4: 1,800)."
    )
    eval_every: int | None = Field(
        None, ge=1, le=MAX_STEPS, description="Also measure the test figure every this many steps."
    )
    n_steps: int = Field(20, ge=2, le=MAX_SERIES_STEPS, description="Series window length (time steps).")
    variable_length: bool = Field(
        False, description="Series windows of random lengths, padded, with per-example lengths (dynamic only)."
    )
    data_path: str | None = Field(
        None,
        min_length=1,
        max_length=1000,
        description="MNIST as a Keras mnist.npz or a folder of IDX files (default: UNROLL_MNIST_PATH, Keras, offline).",
    )

    @field_validator("learning_rate", "keep_prob", "clip_norm", "target_accuracy", mode="before")
    @classmethod
    def _finite_number(cls, value: Any) -> Any:
        """Refuse NaN and infinities with a plain message (pydantic's bounds let inf through)."""
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError("must be a finite number")
        return value

    @field_validator("learning_rate", "keep_prob", "clip_norm", "target_accuracy", mode="before")
    @classmethod
    def _ints_are_numbers_too(cls, value: Any) -> Any:
        """Strict mode refuses the int 1 for a float field; a JSON or form '1' means 1.0."""
        if isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        return value

    @field_validator("name")
    @classmethod
    def _name_is_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value.strip()

    @model_validator(mode="after")
    def _options_fit_together(self) -> RunConfig:
        """Cross-field rules: each refusal names the field the user should change."""
        problems = combination_problems(dict(self))
        if problems:
            field, message = problems[0]
            raise ValueError(f"{field}: {message}")
        return self


class FieldRule(NamedTuple):
    """`field` may leave its default only where `allowed(values)` holds; `message` says why not elsewhere."""

    field: str
    allowed: Callable[[Mapping[str, Any]], bool]
    message: str


STOP_FIELDS = ("target_accuracy", "max_steps", "epochs")
STOP_PROBLEM = ("max_steps", "set at least one stop criterion (target_accuracy, max_steps or epochs)")

# In the order they are checked (the first refusal is the one reported). The layer-level
# rules (implementation to variable_length in static mode) are rnncore.nn.rules's, word for word.
FIELD_RULES = (
    FieldRule(
        "target_accuracy",
        lambda v: v["task"] != "series",
        "the series task has no accuracy (it measures MSE); use max_steps or epochs",
    ),
    FieldRule(
        "implementation",
        lambda v: v["cell"] != "sru",
        "Keras has no SRU layer; use implementation 'unroll' for the sru cell",
    ),
    FieldRule(
        "activation",
        lambda v: v["cell"] == "rnn",
        "only the rnn cell takes an activation; lstm, gru and sru use their own gates",
    ),
    FieldRule(
        "residual", lambda v: v["layers"] >= 2, "residual connections join layers of equal width: use at least 2 layers"
    ),
    FieldRule("swap_memory", lambda v: v["mode"] == "dynamic", "only the dynamic mode's while loop can swap memory"),
    FieldRule(
        "variable_length",
        lambda v: v["task"] == "series",
        "only the series task has windows of several lengths (MNIST rows are always 28)",
    ),
    FieldRule(
        "variable_length",
        lambda v: v["mode"] != "static",
        "static unrolling needs every sequence of the same length: use mode 'dynamic'",
    ),
    FieldRule(
        "head",
        lambda v: v["task"] == "mnist",
        "the last-3-outputs head is for MNIST; the series task predicts at every step",
    ),
    FieldRule("data_path", lambda v: v["task"] == "mnist", "only the mnist task reads data files"),
)


def _with_defaults(values: Mapping[str, Any]) -> dict[str, Any]:
    """`values` with every field they leave out at the schema's default."""
    return {**{name: info.default for name, info in RunConfig.model_fields.items()}, **values}


def combination_problems(values: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(field, message) for each cross-field rule `values` break, in the order checked; [] when they fit.

    `values` are plain field values (a form's, a command line's, `dict(config)`), not yet
    validated one by one; a field left out counts as its default. Each message names the
    field the user should change.
    """
    chosen = _with_defaults(values)
    problems = [STOP_PROBLEM] if all(chosen[field] is None for field in STOP_FIELDS) else []
    defaults = _with_defaults({})
    for rule in FIELD_RULES:
        if chosen[rule.field] != defaults[rule.field] and not rule.allowed(chosen):
            problems.append((rule.field, rule.message))
    return problems


def inapplicable_fields(values: Mapping[str, Any]) -> set[str]:
    """The fields the rules hold at their default for `values`: any other value would be refused.

    Fields left out of `values` count as their defaults. The Launch form does not draw these.
    """
    chosen = _with_defaults(values)
    return {rule.field for rule in FIELD_RULES if not rule.allowed(chosen)}


class ConfigError(ValueError):
    """A config was refused; `errors` lists (field, message) pairs for the form to show."""

    def __init__(self, errors: list[tuple[str, str]]):
        self.errors = errors
        super().__init__("; ".join(f"{field}: {message}" for field, message in errors))


def _field_errors(error: ValidationError) -> list[tuple[str, str]]:
    """Flatten pydantic's errors into (field, message) pairs a person can act on."""
    pairs = []
    for item in error.errors():
        location = ".".join(str(part) for part in item["loc"])
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = f"unknown field; allowed fields are: {', '.join(RunConfig.model_fields)}"
        elif item["type"] == "literal_error":
            message = message.replace("Input should be", "must be one of:")
        else:
            message = message.replace("Input should be", "must be")
        if not location and ": " in message:  # a cross-field rule names its own field
            location, message = message.split(": ", 1)
        pairs.append((location or "config", message))
    return pairs


def validate_config(data: Any) -> RunConfig:
    """Return a RunConfig for `data` (a mapping or a RunConfig), or raise ConfigError."""
    if isinstance(data, RunConfig):
        return data
    if not isinstance(data, dict):
        raise ConfigError([("config", f"must be a mapping of field names to values, not {type(data).__name__}")])
    try:
        return RunConfig.model_validate(data)
    except ValidationError as error:
        raise ConfigError(_field_errors(error)) from None


def config_to_json(config: RunConfig) -> dict[str, Any]:
    """The JSON-ready dict stored in the runs table (every field, defaults included)."""
    return config.model_dump(mode="json")


def field_type(name: str) -> tuple[Any, bool]:
    """(the type of a config field, whether it may be left unset): `X | None` gives (X, True).

    The form and the command line build their inputs from this, so both read an optional
    field the same way, whichever spelling (Optional[X] or X | None) the schema uses.
    """
    annotation = RunConfig.model_fields[name].annotation
    args = get_args(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and type(None) in args:
        return next(arg for arg in args if arg is not type(None)), True
    return annotation, False
