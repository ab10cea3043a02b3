"""Read models for the pages: plain functions over a session, returning plain rows."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, get_args

import numpy as np
import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from db import queue
from db.models import Run, RunStatus, utcnow
from db.run_config import Cell, Mode, Task
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
        "name": run.name,
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


# Filterable columns: the runs' own columns, and config fields read from the stored JSON.
FILTER_COLUMNS = {"status": Run.status, "group": Run.group_name}
CONFIG_FILTERS = ("task", "cell", "mode")


def _filter_clauses(filters: Mapping[str, Sequence[Any]]) -> list[Any]:
    """SQL conditions for {column: chosen values} (an empty choice keeps every run)."""
    clauses = []
    for column, values in filters.items():
        if not values:
            continue
        if column in FILTER_COLUMNS:
            clauses.append(FILTER_COLUMNS[column].in_(list(values)))
        elif column in CONFIG_FILTERS:
            clauses.append(Run.config[column].as_string().in_(list(values)))
        else:
            raise ValueError(
                f"cannot filter on {column!r}; filters are {', '.join([*FILTER_COLUMNS, *CONFIG_FILTERS])}"
            )
    return clauses


@dataclass(frozen=True)
class RunPage:
    rows: list[dict[str, Any]]
    total: int  # runs matching the filters, on every page
    offset: int


def run_page(session: Session, filters: Mapping[str, Sequence[Any]], offset: int = 0, limit: int = 200) -> RunPage:
    """One page of the Runs table, newest first, filtered in the database (any number of runs)."""
    where = _filter_clauses(filters)
    total = queue.count_runs(session, where)
    offset = max(0, min(offset, max(0, total - 1) // limit * limit))  # a page past the end shows the last
    return RunPage([_row(run) for run in queue.list_runs(session, limit, offset, where)], total, offset)


def filter_options(session: Session) -> dict[str, list[Any]]:
    """The values each filter offers: statuses and config choices from the schema, groups as stored."""
    groups = session.scalars(select(Run.group_name).where(Run.group_name.is_not(None)).distinct()).all()
    return {
        "status": [status.value for status in RunStatus],
        "group": sorted(groups),
        "task": list(get_args(Task)),
        "cell": list(get_args(Cell)),
        "mode": list(get_args(Mode)),
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
