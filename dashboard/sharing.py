"""The Compare page's shareable state <-> URL query parameters (no Streamlit here).

?runs=3,4,9&x=seconds&smooth=0.6&group=mode&band=std&log=1&baseline=%233%20static&target=0.95

Values that cannot be read are ignored (the default is used); defaults are left out of
the URL so links stay short.
"""

from __future__ import annotations

from typing import Any, Mapping

from dashboard.charts import BANDS, X_AXES

DEFAULTS: dict[str, Any] = {"runs": [], "x": "step", "smooth": 0.0, "log": False, "group": "",
                            "band": "minmax", "baseline": "", "target": 0.9}


def _runs(text: str) -> list[int]:
    ids = []
    for part in text.split(","):
        part = part.strip()
        if part.isascii() and part.isdigit() and int(part) not in ids:
            ids.append(int(part))
    return ids


def _fraction(text: str, low: float, high: float) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if low <= value <= high else None


def from_query(params: Mapping[str, str], group_fields: tuple[str, ...] = ()) -> dict[str, Any]:
    """The Compare state a URL describes (every key present, defaults where absent or unreadable)."""
    state = dict(DEFAULTS)
    if "runs" in params:
        state["runs"] = _runs(params["runs"])
    if params.get("x") in X_AXES:
        state["x"] = params["x"]
    if (smooth := _fraction(params.get("smooth", ""), 0.0, 0.99)) is not None:
        state["smooth"] = smooth
    if (target := _fraction(params.get("target", ""), 0.01, 1.0)) is not None:
        state["target"] = target
    state["log"] = params.get("log", "") in ("1", "true")
    if params.get("group") in group_fields:
        state["group"] = params["group"]
    if params.get("band") in BANDS:
        state["band"] = params["band"]
    state["baseline"] = params.get("baseline", "")[:300]
    return state


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
