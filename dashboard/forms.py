"""The launch form, derived from the run config schema (no Streamlit here: plain, testable).

Each RunConfig field becomes one widget description: a choice for a Literal, a checkbox
for a bool, a number box (empty allowed for optional fields) for numbers, a text box
for the name. The page draws them in GROUPS, only the fields that apply to the values
chosen so far (`applicable_fields`); `clean_values` turns the values back into config data,
and `error_text` words a refusal with the field's label.
"""

from __future__ import annotations

import re
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from annotated_types import Ge, Gt, Le, Lt

from db.run_config import RunConfig, field_type, inapplicable_fields

# Where each field sits on the page. Every field that decides whether another applies comes
# before it (task before target accuracy, layers before residual), so one pass draws them all.
GROUPS: dict[str, tuple[str, ...]] = {
    "Model": (
        "cell",
        "mode",
        "implementation",
        "hidden_units",
        "layers",
        "activation",
        "sru_highway",
        "bidirectional",
        "residual",
        "keep_prob",
        "swap_memory",
    ),
    "Task": ("task", "n_steps", "variable_length", "head", "train_subset", "data_path"),
    "Training": ("batch_size", "learning_rate", "optimizer", "clip_norm", "seed", "eval_every"),
    "Stop": ("target_accuracy", "max_steps", "epochs"),
}

# Where the form starts when it differs from the schema: a name to edit, and a stop criterion
# (the schema requires one). max_steps can be cleared; target_accuracy starts unset, since
# the series task refuses it and a prefilled target would stop every MNIST run early.
FORM_DEFAULTS = {"name": "my run", "max_steps": 300}

# Fields the schema accepts everywhere, but whose description says they are for one cell or task only.
DESCRIBED_FOR = {
    "sru_highway": lambda chosen: chosen["cell"] == "sru",
    "n_steps": lambda chosen: chosen["task"] == "series",
}


def applicable_fields(values: Mapping[str, Any]) -> set[str]:
    """The fields that mean something for the task, cell, mode and number of layers chosen.

    A field is left out when db.run_config's cross-field rules would refuse any value but
    its default (`inapplicable_fields`: relu for an LSTM, a target accuracy for the series
    task, swap memory when static, ...), or when its description says it is for one cell
    or task only (DESCRIBED_FOR: the SRU's highway, the series' window length). The page
    draws only these; the others take the schema's default. Missing values count as the
    defaults.
    """
    chosen = {**{name: info.default for name, info in RunConfig.model_fields.items()}, **values}
    left_out = inapplicable_fields(chosen) | {name for name, applies in DESCRIBED_FOR.items() if not applies(chosen)}
    return set(RunConfig.model_fields) - left_out


@dataclass(frozen=True)
class FieldSpec:
    """How to draw one config field."""

    name: str
    kind: str  # "choice" | "bool" | "int" | "float" | "text"
    label: str
    help: str
    default: Any
    optional: bool = False
    options: tuple = ()
    minimum: float | None = None
    maximum: float | None = None


def _bounds(metadata) -> tuple[float | None, float | None]:
    """The limits a field's Field(ge=..., gt=..., le=..., lt=...) put in its metadata."""
    low: float | None = None
    high: float | None = None
    for item in metadata:
        if isinstance(item, (Ge, Gt)):
            low = cast(float, item.ge if isinstance(item, Ge) else item.gt)
        elif isinstance(item, (Le, Lt)):
            high = cast(float, item.le if isinstance(item, Le) else item.lt)
    return low, high


def _kind(annotation) -> str:
    if typing.get_origin(annotation) is typing.Literal:
        return "choice"
    return {bool: "bool", int: "int", float: "float", str: "text"}[annotation]


_FIELD_NAME = re.compile(r"\b(" + "|".join(name for name in RunConfig.model_fields if "_" in name) + r")\b")


def label(field: str) -> str:
    """The words the form shows for a field: hidden_units -> "hidden units"."""
    return field.replace("_", " ")


def error_text(field: str, message: str) -> str:
    """A refusal as the form's reader sees it: the field's label, and labels for fields the message names."""
    return f"{label(field)}: {_FIELD_NAME.sub(lambda match: label(match.group(0)), message)}"


def field_specs() -> list[FieldSpec]:
    """One FieldSpec per RunConfig field, in the schema's order."""
    specs = []
    for name, info in RunConfig.model_fields.items():
        annotation, optional = field_type(name)
        low, high = _bounds(info.metadata)
        kind = _kind(annotation)
        specs.append(
            FieldSpec(
                name=name,
                kind=kind,
                label=label(name),
                help=info.description or "",
                default=None if info.is_required() else info.default,
                optional=optional,
                options=typing.get_args(annotation) if kind == "choice" else (),
                minimum=low,
                maximum=high,
            )
        )
    return specs


def initial_value(spec: FieldSpec) -> Any:
    """What the form shows before the user changes anything."""
    return FORM_DEFAULTS.get(spec.name, spec.default)


def clean_values(values: dict[str, Any]) -> dict[str, Any]:
    """The form's values as config data: an empty box (None, or a blank optional text) is "not set"."""
    optional = {spec.name for spec in field_specs() if spec.optional}
    return {
        name: value
        for name, value in values.items()
        if value is not None and not (name in optional and isinstance(value, str) and not value.strip())
    }
