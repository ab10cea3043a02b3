"""The Compare page's shareable state <-> URL query parameters (no Streamlit here).

?runs=3,4,9&x=seconds&view=e1&smooth=0.6&group=mode&band=std&log=1&baseline=%233%20static&target=0.95

A value that cannot be read falls back to its default, and from_query says so (a link that
silently shows an empty page leaves its reader guessing); defaults are left out of the URL
so links stay short.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from dashboard.charts import BANDS, X_AXES
from dashboard.comparison import DEFAULT_VIEW, VIEWS

DEFAULTS: dict[str, Any] = {
    "runs": [],
    "x": "step",
    "view": DEFAULT_VIEW,
    "smooth": 0.0,
    "log": False,
    "group": "",
    "band": "minmax",
    "baseline": "",
    "target": 0.9,
}
MAX_BASELINE = 300
SHOWN_CHARACTERS = 40  # of a refused value, in a message


class Unreadable(ValueError):
    """A query value that cannot be used; the message says why (without naming the parameter)."""


class LinkState(dict):
    """The Compare state a link describes, with `problems`: one sentence per value it left out.
    A dict, so a caller that only wants the state uses it as one."""

    def __init__(self, state: Mapping[str, Any], problems: Sequence[str] = ()):
        super().__init__(state)
        self.problems = list(problems)


def _quoted(text: str) -> str:
    """A refused value as messages show it: quoted, and cut (a link can hold anything)."""
    return repr(text if len(text) <= SHOWN_CHARACTERS else text[:SHOWN_CHARACTERS] + "…")


LARGEST_ID = 2**63 - 1  # no database stores a larger id, so no link can name one
MAX_COMPARED = 50  # runs one Compare view draws: a link cannot make every tick load thousands


def parse_run_id(text: str) -> int | None:
    """The run id a link names, or None when it is not one (letters, a sign, a huge number)."""
    text = text.strip()
    if not (text.isascii() and text.isdigit()) or len(text) > len(str(LARGEST_ID)):
        return None
    value = int(text)
    return value if value <= LARGEST_ID else None


def _run_ids(text: str) -> tuple[list[int], list[str]]:
    """The run ids of "3,4,9" in order, once each (at most MAX_COMPARED), and a problem per part
    that is no id."""
    ids, problems = [], []
    for part in (part.strip() for part in text.split(",")):
        run_id = parse_run_id(part)
        if run_id is None and part:
            problems.append(f"runs: {_quoted(part)} is not a run id")
        elif run_id is not None and run_id not in ids:
            ids.append(run_id)
    if len(ids) > MAX_COMPARED:
        problems.append(f"runs: a view compares at most {MAX_COMPARED} runs; {len(ids) - MAX_COMPARED} were left out")
    return ids[:MAX_COMPARED], problems


def _choice(options: Sequence[str], what: str = "") -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text in options:
            return text
        raise Unreadable(f"{_quoted(text)} is not {what or 'one of ' + ', '.join(options)}")

    return parse


def _number(low: float, high: float) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = float("nan")  # refused below, like any number out of range
        if not low <= value <= high:
            raise Unreadable(f"{_quoted(text)} is not a number from {low:g} to {high:g}")
        return value

    return parse


def _flag(text: str) -> bool:
    if text.lower() in ("1", "true", "0", "false", ""):
        return text.lower() in ("1", "true")
    raise Unreadable(f"{_quoted(text)} is not 1 or 0")


def _text(text: str) -> str:
    return text[:MAX_BASELINE]  # a run label or group; the page keeps it only if it matches one


def _parsers(group_fields: Sequence[str]) -> dict[str, Callable[[str], Any]]:
    """How each setting other than runs is read from its query value."""
    return {
        "x": _choice(tuple(X_AXES)),
        "view": _choice(tuple(VIEWS)),
        "smooth": _number(0.0, 0.99),
        "target": _number(0.01, 1.0),
        "log": _flag,
        "group": _choice(group_fields, "a config field"),
        "band": _choice(tuple(BANDS)),
        "baseline": _text,
    }


def from_query(params: Mapping[str, str], group_fields: Sequence[str] = ()) -> LinkState:
    """The Compare state a URL describes: every key present, defaults where absent or unreadable,
    and a problem ("x: 'banana' is not one of step, seconds, wall") for each value left out."""
    state, problems = dict(DEFAULTS), []
    parsers = _parsers(group_fields)
    for key, text in params.items():
        if key == "runs":
            state["runs"], refused = _run_ids(text)
            problems += refused
        elif key in parsers:
            try:
                state[key] = parsers[key](text)
            except Unreadable as error:
                problems.append(f"{key}: {error}")
        else:
            problems.append(f"{_quoted(key)} is not a setting of this page ({', '.join(DEFAULTS)})")
    return LinkState(state, problems)


def to_query(state: Mapping[str, Any]) -> dict[str, str]:
    """The URL parameters for a Compare state, leaving out defaults."""
    query = {}
    for key, default in DEFAULTS.items():
        value = state.get(key, default)
        if value == default or value in (None, ""):
            continue
        if key == "runs":
            query[key] = ",".join(str(run_id) for run_id in value)
        elif key == "log":
            query[key] = "1"
        elif isinstance(value, float):
            query[key] = f"{value:g}"
        else:
            query[key] = str(value)
    return query


def preset_query(run_ids: Sequence[int], view: str) -> dict[str, str]:
    """The Compare link's parameters for a preset's runs, opening on the view that answers the
    preset's question (db.presets.Preset.view); a view this dashboard does not know opens the default."""
    return to_query({"runs": list(run_ids), "view": view if view in VIEWS else DEFAULT_VIEW})
