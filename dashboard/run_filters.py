"""The Runs page's filters and sort <-> URL query parameters (no Streamlit here).

?status=failed,running&tag=baseline&hidden_units=64,128&learning_rate=0.001..0.01&q=lstm&sort=test_accuracy

Every filter of dashboard.queries has a parameter of its name: lists are comma-separated
(`group` is repeated instead, ?group=a&group=b, because group names are free text and may
hold commas); numeric config fields take values and low..high ranges, and `none` for an
optional field left unset; flags are 1 or 0; `q` is the text search. Any one value of a list
matches; different parameters must all match. As with Compare's links (dashboard.sharing),
a value that cannot be read is left out and `problems` names its parameter, so a link never
silently shows the wrong runs; defaults are left out of the URL, so links stay short.

The page's widgets hold exactly the text of these parameters (`widget_values`,
`query_from_widgets`), so what is typed into a box is checked by the same rules as a link.
"""

from __future__ import annotations

import math
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dashboard.queries import CONFIG_FILTERS, SORTS, Range
from db import queue
from db.models import RunStatus
from db.run_config import ConfigError, field_type

DEFAULT_SORT = "id"  # newest first
MAX_VALUES = 50  # per parameter: a link cannot make every tick build a huge IN list
MAX_TEXT = 200  # characters of a search, a group or a data source
SHOWN_CHARACTERS = 40  # of a refused value, in a message
FLAGS = {"1": True, "true": True, "0": False, "false": False, "": False}
LARGEST_INT = 2**63 - 1  # a database's integers go no further


class Unreadable(ValueError):
    """One value of a parameter that cannot be used; the message says why (without the parameter)."""


def _quoted(text: str) -> str:
    """A refused value as messages show it: quoted, and cut (a link can hold anything)."""
    return repr(text if len(text) <= SHOWN_CHARACTERS else text[:SHOWN_CHARACTERS] + "…")


@dataclass(frozen=True)
class Param:
    """How one URL parameter is read: `kind` is choices, groups, tags, flag, yesno, numbers or text."""

    kind: str
    choices: tuple[str, ...] = ()
    number: type = float  # numbers: int or float
    optional: bool = False  # numbers: "none" finds runs that leave the field unset


def _config_param(name: str) -> Param:
    """A config field's parameter, from its schema type (so a new field is filterable at once)."""
    kind, optional = field_type(name)
    if typing.get_origin(kind) is typing.Literal:
        return Param("choices", tuple(typing.get_args(kind)))
    if kind is bool:
        return Param("yesno")
    if kind in (int, float):
        return Param("numbers", number=kind, optional=optional)
    return Param("text")


PARAMS: dict[str, Param] = {
    "status": Param("choices", tuple(status.value for status in RunStatus)),
    "group": Param("groups"),
    "tag": Param("tags"),
    "starred": Param("flag"),
    "q": Param("text"),
    "source": Param("text"),
    **{name: _config_param(name) for name in CONFIG_FILTERS},
}
ORDERS = ("desc", "asc")
SETTINGS = (*PARAMS, "sort", "order")


@dataclass(frozen=True)
class RunsView:
    """What a Runs link shows: the filters for dashboard.queries.run_page, the sort, and one
    sentence per value that was left out."""

    filters: dict[str, Any] = field(default_factory=dict)
    sort: str = DEFAULT_SORT
    descending: bool = True
    problems: tuple[str, ...] = ()


# --- reading one parameter -------------------------------------------------------------


def _number(text: str, param: Param) -> Any:
    """One value of a numeric field: a number, low..high, or none (optional fields only)."""
    if text.lower() == "none" and param.optional:
        return None
    if ".." in text:
        low, high = (_one_number(part.strip(), param) for part in text.split("..", 1))
        if low > high:
            raise Unreadable(f"{_quoted(text)} is not a range: its low end is above its high end")
        return Range(low, high)
    return _one_number(text, param)


def _one_number(text: str, param: Param) -> Any:
    """A number of the field's type that a database can compare (finite; an int within 64 bits)."""
    try:
        value = param.number(text)
    except ValueError:
        value = None
    if value is None or not math.isfinite(value) or (param.number is int and abs(value) > LARGEST_INT):
        kind = "a whole number" if param.number is int else "a number"
        example = "32..128" if param.number is int else "0.001..0.01"
        ways = f"{kind}, a range like {example}, or none" if param.optional else f"{kind} or a range like {example}"
        raise Unreadable(f"{_quoted(text)} is not {ways}")
    return value


def _flag(text: str) -> bool:
    if text.lower() in FLAGS:
        return FLAGS[text.lower()]
    raise Unreadable(f"{_quoted(text)} is not 1 or 0")


def _item(text: str, param: Param) -> Any:
    """One value of a list parameter, checked."""
    if param.kind == "choices" and text not in param.choices:
        raise Unreadable(f"{_quoted(text)} is not one of {', '.join(param.choices)}")
    if param.kind == "tags":
        try:
            [text] = queue.normalise_tags([text])
        except ConfigError:
            raise Unreadable(f"{_quoted(text)} is not a tag ({queue.TAG_RULE})") from None
    if param.kind == "groups" and len(text) > MAX_TEXT:
        raise Unreadable(f"{_quoted(text)} is longer than any group name ({MAX_TEXT} characters)")
    if param.kind == "numbers":
        return _number(text, param)
    return text


def _parts(values: Sequence[str], param: Param) -> list[str]:
    """A list parameter's values: each occurrence, split on commas (group names are taken whole)."""
    split = [values] if param.kind == "groups" else [value.split(",") for value in values]
    return [part.strip() for parts in split for part in parts if part.strip()]


def _list(name: str, values: Sequence[str], param: Param) -> tuple[list[Any], list[str]]:
    """The readable values of a list parameter, each once, and a problem per value left out."""
    found: list[Any] = []
    problems = []
    for text in _parts(values, param):
        try:
            value = _item(text, param)
        except Unreadable as error:
            problems.append(f"{name}: {error}")
            continue
        if value not in found:
            found.append(value)
    if len(found) > MAX_VALUES:
        problems.append(f"{name}: a filter takes at most {MAX_VALUES} values; {len(found) - MAX_VALUES} were left out")
    return found[:MAX_VALUES], problems


def _read(name: str, values: Sequence[str], param: Param) -> tuple[Any, list[str]]:
    """(the filter value, problems) of one parameter; the last occurrence counts for a single value."""
    if param.kind in ("flag", "yesno"):
        text = values[-1].strip()
        try:
            flag = _flag(text)
        except Unreadable as error:
            return None, [f"{name}: {error}"]
        if param.kind == "flag":  # the star: 1 keeps starred runs, 0 keeps every run
            return flag or None, []
        return ([flag] if text else None), []  # a yes-no config field: 1 or 0 is a filter, empty is none
    if param.kind == "text":
        text = values[-1].strip()
        if len(text) > MAX_TEXT:
            return text[:MAX_TEXT], [f"{name}: only its first {MAX_TEXT} characters were used"]
        return text or None, []
    found, problems = _list(name, values, param)
    return found or None, problems


def _sort(params: Mapping[str, Sequence[str]]) -> tuple[str, bool, list[str]]:
    sort, descending, problems = DEFAULT_SORT, True, []
    if params.get("sort"):
        wanted = params["sort"][-1].strip()
        if wanted in SORTS:
            sort = wanted
        elif wanted:
            problems.append(f"sort: {_quoted(wanted)} is not a column or config field to sort by")
    if params.get("order"):
        wanted = params["order"][-1].strip().lower()
        if wanted in ORDERS:
            descending = wanted == "desc"
        elif wanted:
            problems.append(f"order: {_quoted(wanted)} is not asc or desc")
    return sort, descending, problems


def _as_lists(params: Mapping[str, str | Sequence[str]]) -> dict[str, list[str]]:
    """Every parameter as the list of its occurrences (st.query_params gives one or several)."""
    return {key: [value] if isinstance(value, str) else list(value) for key, value in params.items()}


def from_query(params: Mapping[str, str | Sequence[str]]) -> RunsView:
    """The Runs view a URL describes; a problem ("cell: 'transformer' is not one of ...") for each
    value left out, and for each parameter this page does not know."""
    lists = _as_lists(params)
    filters, problems = {}, []
    for name, values in lists.items():
        if name in PARAMS and values:
            value, refused = _read(name, values, PARAMS[name])
            problems += refused
            if value is not None:
                filters[name] = value
        elif name not in SETTINGS:
            problems.append(
                f"{_quoted(name)} is not a setting of this page (status, group, tag, starred, q, source, "
                "sort, order, or a config field such as hidden_units)"
            )
    sort, descending, refused = _sort(lists)
    return RunsView(filters, sort, descending, tuple(problems + refused))


# --- writing ---------------------------------------------------------------------------


def _text_of(value: Any) -> str:
    """A filter value as a URL writes it (floats in their shortest exact form)."""
    if value is None:
        return "none"
    if isinstance(value, Range):
        return f"{_text_of(value.low)}..{_text_of(value.high)}"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _param_text(name: str, value: Any) -> str | list[str]:
    """One filter's URL value: groups repeated, other lists comma-joined, flags 1 or 0."""
    kind = PARAMS[name].kind
    if kind == "groups":
        return list(value)
    if kind == "flag":
        return "1"
    if kind == "yesno":
        return "1" if value[0] else "0"
    if kind == "text":
        return str(value)
    return ",".join(_text_of(item) for item in value)


def to_query(view: RunsView) -> dict[str, str | list[str]]:
    """The URL parameters of a view, in a fixed order, leaving out defaults."""
    query: dict[str, str | list[str]] = {
        name: _param_text(name, view.filters[name]) for name in PARAMS if view.filters.get(name)
    }
    if view.sort != DEFAULT_SORT:
        query["sort"] = view.sort
    if not view.descending:
        query["order"] = "asc"
    return query


# --- the page's widgets hold the parameters' text -----------------------------------------


def widget_values(view: RunsView) -> dict[str, Any]:
    """Each setting's widget value for a view: lists for list parameters, True/False for the star,
    "1"/"0"/"" for yes-no config fields, text otherwise."""
    query = to_query(view)
    values: dict[str, Any] = {}
    for name, param in PARAMS.items():
        text = query.get(name)
        if param.kind in ("choices", "tags"):
            values[name] = str(text).split(",") if text else []
        elif param.kind == "groups":
            values[name] = list(text or [])
        elif param.kind == "flag":
            values[name] = bool(text)
        else:
            values[name] = str(text or "")
    values["sort"] = view.sort
    values["order"] = "desc" if view.descending else "asc"
    return values


def query_from_widgets(values: Mapping[str, Any]) -> dict[str, list[str]]:
    """The raw parameters the widgets hold (read back with from_query, which checks them)."""
    query: dict[str, list[str]] = {}
    for name, param in PARAMS.items():
        value = values.get(name)
        if param.kind in ("choices", "tags"):
            text = [",".join(value)] if value else []
        elif param.kind == "groups":
            text = list(value or [])
        elif param.kind == "flag":
            text = ["1"] if value else []
        else:
            text = [str(value)] if value else []
        if text:
            query[name] = text
    for name, default in (("sort", DEFAULT_SORT), ("order", "desc")):
        if values.get(name) and values[name] != default:
            query[name] = [str(values[name])]
    return query


def cache_key(view: RunsView) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """The view as plain strings, for caches keyed by it (from_query reads it back)."""
    return tuple((name, (text,) if isinstance(text, str) else tuple(text)) for name, text in to_query(view).items())
