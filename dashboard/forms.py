"""The launch form, derived from the run config schema (no Streamlit here: plain, testable).

Each RunConfig field becomes one widget description: a choice for a Literal, a checkbox
for a bool, a number box (empty allowed for optional fields) for numbers, a text box
for the name. The page draws them; `parse_form` turns the values back into a validated
config or a field -> message map for the page to show beside each widget.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import Any, Optional

from annotated_types import Ge, Gt, Le, Lt

from db.run_config import ConfigError, RunConfig, validate_config


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
    minimum: Optional[float] = None
    maximum: Optional[float] = None


def _unwrap_optional(annotation) -> tuple[Any, bool]:
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) is typing.Union and type(None) in args:
        return next(arg for arg in args if arg is not type(None)), True
    return annotation, False


def _bounds(metadata) -> tuple[Optional[float], Optional[float]]:
    low = high = None
    for item in metadata:
        if isinstance(item, (Ge, Gt)):
            low = getattr(item, "ge", None) if isinstance(item, Ge) else item.gt
        elif isinstance(item, (Le, Lt)):
            high = getattr(item, "le", None) if isinstance(item, Le) else item.lt
    return low, high


def _kind(annotation) -> str:
    if typing.get_origin(annotation) is typing.Literal:
        return "choice"
    return {bool: "bool", int: "int", float: "float", str: "text"}[annotation]


def field_specs() -> list[FieldSpec]:
    """One FieldSpec per RunConfig field, in the schema's order."""
    specs = []
    for name, info in RunConfig.model_fields.items():
        annotation, optional = _unwrap_optional(info.annotation)
        low, high = _bounds(info.metadata)
        kind = _kind(annotation)
        specs.append(FieldSpec(
            name=name, kind=kind, label=name.replace("_", " "), help=info.description or "",
            default=None if info.is_required() else info.default, optional=optional,
            options=typing.get_args(annotation) if kind == "choice" else (),
            minimum=low, maximum=high,
        ))
    return specs


def clean_values(values: dict[str, Any]) -> dict[str, Any]:
    """The form's values as config data: an empty box (None, or a blank optional text) is "not set"."""
    optional = {spec.name for spec in field_specs() if spec.optional}
    return {name: value for name, value in values.items()
            if value is not None and not (name in optional and isinstance(value, str) and not value.strip())}


def parse_form(values: dict[str, Any]) -> tuple[Optional[RunConfig], dict[str, str]]:
    """Validate the form's values: (config, {}) or (None, {field: message})."""
    try:
        return validate_config(clean_values(values)), {}
    except ConfigError as error:
        return None, {field: message for field, message in error.errors}
