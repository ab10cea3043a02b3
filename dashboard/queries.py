"""Read models for the pages: plain functions over a session, returning plain rows."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple, get_args

import numpy as np
import pandas as pd
from sqlalchemy import and_, case, func, literal, null, or_, select
from sqlalchemy.orm import Session

from db import queue
from db.models import Run, RunStatus, UTCDateTime, utcnow
from db.run_config import Cell, Mode, RunConfig, Task, field_type
from db.summary import StoredSummary

POINT_COLUMNS = ["run_id", "metric", "step", "seconds", "wall", "value"]


@dataclass(frozen=True)
class RunInfo:
    """A run as the comparison pages need it, detached from the session."""

    id: int
    name: str
    group: str | None
    status: str
    config: dict[str, Any]
    summary: StoredSummary  # as stored (see db.summary); read figures with RunSummary.from_stored
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None
    worker: str | None
    progress_step: int | None
    attempts: int
    rerun_of: int | None = None
    log_tail: str | None = None
    tags: tuple[str, ...] = ()
    notes: str | None = None
    starred: bool = False

    @property
    def label(self) -> str:
        return f"#{self.id} {self.name}"

    @classmethod
    def of(cls, run: Run) -> RunInfo:
        return cls(
            run.id,
            run.name,
            run.group_name,
            run.status.value,
            dict(run.config or {}),
            dict(run.summary or {}),
            run.started_at,
            run.finished_at,
            run.error,
            run.worker_id,
            run.progress_step,
            run.attempts,
            run.rerun_of,
            run.log_tail,
            tuple(run.tag_list),
            run.notes,
            bool(run.starred),
        )


def progress(run: Run) -> float | None:
    """progress_step over the config's max_steps (0..1), when max_steps is set."""
    max_steps = (run.config or {}).get("max_steps")
    if not max_steps:
        return None
    if run.status == RunStatus.SUCCEEDED:
        return 1.0
    if run.status == RunStatus.QUEUED:  # a re-queued run starts over
        return 0.0
    return min(1.0, (run.progress_step or 0) / max_steps)


def _row(run: Run) -> dict[str, Any]:
    """The Runs table's columns for one run; test accuracy and test MSE are different measures,
    so they get a column each."""
    config, latest, summary = run.config or {}, run.latest or {}, run.summary or {}
    age = queue.run_age(run)
    return {
        "id": run.id,
        "starred": bool(run.starred),
        "name": run.name,
        "tags": run.tag_list,
        "group": run.group_name,
        "status": run.status.value,
        "task": config.get("task"),
        "cell": config.get("cell"),
        "mode": config.get("mode"),
        "progress": progress(run),
        "steps": run.progress_step,
        "ms/step": summary.get("median_step_ms"),
        "elapsed s": None if age is None else round(age.total_seconds(), 1),
        "loss": latest.get("loss"),
        "accuracy": latest.get("accuracy"),
        "test accuracy": summary.get("test_accuracy"),
        "test MSE": summary.get("test_mse"),
        "worker": run.worker_id,
        "error": (run.error or "").split("\n", 1)[0] or None,
        "error_text": run.error,
    }


class Range(NamedTuple):
    """low..high, both ends included: a numeric config filter such as learning_rate 0.001..0.01."""

    low: float
    high: float


# What the Runs page filters on (all in SQL): the runs' own columns; every config field but the
# name (which the search covers), read from the stored JSON; tags, the star, a text search over
# name, group, tags and notes, and the data source a finished run reports.
RUN_FILTERS = {"status": Run.status, "group": Run.group_name}
CONFIG_FILTERS = tuple(name for name in RunConfig.model_fields if name != "name")
# Cheapest first: SQLite tests a scan's conditions in the order given, so plain columns rule most
# runs out before any JSON is parsed (the summary, which may hold series plots, last).
FILTERS = (*RUN_FILTERS, "starred", "tag", "q", *CONFIG_FILTERS, "source")


def _config_value(field: str) -> Any:
    """A config field as an SQL value of its schema type (json_extract on SQLite, ->> and a cast on
    PostgreSQL), so 32 matches 32 and 0.01 matches 0.01 on both."""
    kind, _optional = field_type(field)
    item = Run.config[field]
    if kind is bool:
        return item.as_boolean()
    if kind is int:
        return item.as_integer()
    if kind is float:
        return item.as_float()
    return item.as_string()


def _config_clause(field: str, values: Sequence[Any]) -> Any:
    """Runs whose field is any of `values`: exact values, Range(low, high), or None for "not set";
    a free-text field (data_path) matches by substring."""
    value = _config_value(field)
    if field_type(field)[0] is str:
        return or_(*(value.icontains(str(text), autoescape=True) for text in values))
    exact = [item for item in values if item is not None and not isinstance(item, Range)]
    parts = [value.in_(exact)] if exact else []
    parts += [value.between(item.low, item.high) for item in values if isinstance(item, Range)]
    parts += [value.is_(None)] if any(item is None for item in values) else []
    return or_(*parts)


def _tagged(tags: Sequence[str]) -> Any:
    """Runs carrying any of the tags (stored space-separated: padded, one LIKE finds a whole tag)."""
    padded = literal(" ") + Run.tags + literal(" ")
    return or_(*(padded.contains(f" {tag} ", autoescape=True) for tag in tags))


def _search(text: str) -> Any:
    """Every word must appear (any case) in the name, group, tags or notes; a word like 12 or #12
    also finds run 12."""
    clauses = []
    for word in text.split():
        fields = [column.icontains(word, autoescape=True) for column in (Run.name, Run.group_name, Run.tags, Run.notes)]
        number = word.removeprefix("#")
        if number.isascii() and number.isdigit() and len(number) < 19:
            fields.append(Run.id == int(number))
        clauses.append(or_(*fields))
    return and_(*clauses)


def _filter_clauses(filters: Mapping[str, Any]) -> list[Any]:
    """SQL conditions for the filters (see FILTERS): lists of wanted values, where any one matches
    (an empty list keeps every run); `starred` True keeps starred runs; `q` and `source` are text."""
    unknown = [column for column in filters if column not in FILTERS]
    if unknown:
        raise ValueError(f"cannot filter on {unknown[0]!r}; filters are {', '.join(FILTERS)}")
    clauses = []
    for column in FILTERS:
        values = filters.get(column)
        if not values:  # None, False, "" and [] all keep every run
            continue
        if column in RUN_FILTERS:
            clauses.append(RUN_FILTERS[column].in_(list(values)))
        elif column == "tag":
            clauses.append(_tagged(list(values)))
        elif column == "starred":
            clauses.append(Run.starred.is_(True))
        elif column == "q":
            clauses.append(_search(str(values)))
        elif column == "source":
            clauses.append(Run.summary["data_source"].as_string().icontains(str(values), autoescape=True))
        else:
            clauses.append(_config_clause(column, list(values)))
    return clauses


def _elapsed(dialect: str) -> Any:
    """Seconds since the run started, to its end or now (as the table's "elapsed s")."""
    end = func.coalesce(Run.finished_at, literal(utcnow(), UTCDateTime()))
    if dialect == "postgresql":
        return func.extract("epoch", end - Run.started_at)
    return (func.julianday(end) - func.julianday(Run.started_at)) * 86400.0


def _progress(_dialect: str) -> Any:
    """The table's progress (see `progress`) in SQL: none without max_steps, else 0..1."""
    max_steps = Run.config["max_steps"].as_float()
    return case(
        (max_steps.is_(None), null()),
        (Run.status == RunStatus.SUCCEEDED, 1.0),
        (Run.status == RunStatus.QUEUED, 0.0),
        else_=func.coalesce(Run.progress_step, 0) / max_steps,
    )


def _column(expression: Any) -> Callable[[str], Any]:
    return lambda _dialect: expression


# Sort keys (URL-friendly) -> the SQL each sorts by; the table's columns first, then config fields.
SORTS: dict[str, Callable[[str], Any]] = {
    "id": _column(Run.id),
    "starred": _column(Run.starred),
    "name": _column(Run.name),
    "tags": _column(Run.tags),
    "status": _column(Run.status),
    "progress": _progress,
    "steps": _column(Run.progress_step),
    "ms_per_step": _column(Run.summary["median_step_ms"].as_float()),
    "loss": _column(Run.latest["loss"].as_float()),
    "accuracy": _column(Run.latest["accuracy"].as_float()),
    "test_accuracy": _column(Run.summary["test_accuracy"].as_float()),
    "test_mse": _column(Run.summary["test_mse"].as_float()),
    "group": _column(Run.group_name),
    "elapsed": _elapsed,
    "worker": _column(Run.worker_id),
    "error": _column(Run.error),
    **{field: _column(_config_value(field)) for field in CONFIG_FILTERS},
}


def _order(session: Session, sort: str, descending: bool) -> list[Any]:
    """ORDER BY for a sort key; runs without a value come last either way (the id breaks ties)."""
    if sort not in SORTS:
        raise ValueError(f"cannot sort by {sort!r}; sorts are {', '.join(SORTS)}")
    if sort == "id":
        return [Run.id.desc() if descending else Run.id.asc()]
    expression = SORTS[sort](session.get_bind().dialect.name)
    return [(expression.desc() if descending else expression.asc()).nulls_last()]


@dataclass(frozen=True)
class RunPage:
    rows: list[dict[str, Any]]
    total: int  # runs matching the filters, on every page
    offset: int


def run_page(
    session: Session,
    filters: Mapping[str, Any],
    offset: int = 0,
    limit: int = 200,
    sort: str = "id",
    descending: bool = True,
) -> RunPage:
    """One page of the Runs table (newest first unless sorted otherwise), filtered and sorted in the
    database, so any number of runs pages as fast as a few."""
    where = _filter_clauses(filters)
    order = _order(session, sort, descending)
    total = queue.count_runs(session, where)
    offset = max(0, min(offset, max(0, total - 1) // limit * limit))  # a page past the end shows the last
    return RunPage([_row(run) for run in queue.list_runs(session, limit, offset, where, order)], total, offset)


def run_tags(session: Session) -> list[str]:
    """Every tag some run carries, sorted (one scan of the few distinct tag sets)."""
    stored = session.scalars(select(Run.tags).where(Run.tags != "").distinct()).all()
    return sorted({tag for tags in stored for tag in tags.split()})


def filter_options(session: Session) -> dict[str, list[Any]]:
    """The values each filter offers: statuses and config choices from the schema, groups as stored."""
    groups = session.scalars(select(Run.group_name).where(Run.group_name.is_not(None)).distinct()).all()
    return {
        "status": [status.value for status in RunStatus],
        "group": sorted(groups),
        "task": list(get_args(Task)),
        "cell": list(get_args(Cell)),
        "mode": list(get_args(Mode)),
        "tag": run_tags(session),
    }


def run_labels(session: Session, limit: int = 1000, include: Sequence[int] = ()) -> list[tuple[int, str]]:
    """(id, "#id name") of the newest `limit` runs and of the runs in `include`, newest first."""
    newest = session.execute(select(Run.id, Run.name).order_by(Run.id.desc()).limit(limit)).all()
    extra = session.execute(select(Run.id, Run.name).where(Run.id.in_(list(include)))).all() if include else []
    found = {run_id: f"#{run_id} {name}" for run_id, name in [*newest, *extra]}
    return sorted(found.items(), reverse=True)


SILENT_AFTER = timedelta(seconds=10)  # five missed heartbeats at the default rate: worth a warning


def worker_health(session: Session, within: timedelta) -> dict[str, Any]:
    """Live workers, whether queued runs wait with nobody to run them, and running runs whose
    worker has gone silent (they are failed once they pass the staleness limit)."""
    workers = queue.live_workers(session, within)
    waiting = queue.count_queued(session)
    now = utcnow()
    silent = session.execute(
        select(Run.id, Run.heartbeat_at)
        .where(Run.status == RunStatus.RUNNING, Run.heartbeat_at < now - SILENT_AFTER)
        .order_by(Run.id)
    ).all()
    return {
        "workers": [
            {"id": w.id, "host": w.host, "pid": w.pid, "last heartbeat": w.heartbeat_at, "run": w.current_run_id}
            for w in workers
        ],
        "queued": waiting,
        "stranded": waiting > 0 and not workers,
        "silent": [(run_id, (now - beat).total_seconds()) for run_id, beat in silent if beat is not None],
    }


def run_infos(session: Session, run_ids: Sequence[int]) -> list[RunInfo]:
    """The runs with these ids, in the order given (missing ids are skipped)."""
    found = {run.id: run for run in session.scalars(select(Run).where(Run.id.in_(list(run_ids))))}
    return [RunInfo.of(found[run_id]) for run_id in run_ids if run_id in found]


def points_frame(session: Session, run_id: int, started_at: datetime | None) -> pd.DataFrame:
    """Every stored point of a run as a long table (see dashboard.charts).

    `wall` is when each point was recorded; points stored before the schema kept that
    fall back to started_at + seconds.
    """
    curves = queue.curve_arrays(session, run_id)
    if not curves:
        return pd.DataFrame(columns=POINT_COLUMNS)
    values = np.concatenate(list(curves.values()))
    names = np.repeat(np.array(list(curves), dtype=object), [len(array) for array in curves.values()])
    estimated = (started_at.timestamp() if started_at else 0.0) + values[:, 1]
    return pd.DataFrame(
        {
            "run_id": np.full(len(values), run_id),
            "metric": names,
            "step": values[:, 0].astype(np.int64),
            "seconds": values[:, 1],
            "value": values[:, 2],
            "wall": np.where(np.isnan(values[:, 3]), estimated, values[:, 3]),
        },
        columns=POINT_COLUMNS,
    )


def concat_points(frames: Sequence[pd.DataFrame]) -> pd.DataFrame:
    frames = [frame for frame in frames if len(frame)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=POINT_COLUMNS)
