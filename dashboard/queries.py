"""Read models for the pages: plain functions over a session, returning plain rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Optional, Sequence

import numpy as np
import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from db import queue
from db.models import Run, RunStatus

ACTIVE = (RunStatus.QUEUED.value, RunStatus.RUNNING.value)  # statuses worth refreshing a view for
POINT_COLUMNS = ["run_id", "metric", "step", "seconds", "wall", "value"]


@dataclass(frozen=True)
class RunInfo:
    """A run as the comparison pages need it, detached from the session."""

    id: int
    name: str
    group: Optional[str]
    status: str
    config: dict[str, Any]
    summary: dict[str, Any]
    started_at: Optional[datetime]
    finished_at: Optional[datetime]
    error: Optional[str]
    worker: Optional[str]
    progress_step: Optional[int]
    attempts: int

    @property
    def label(self) -> str:
        return f"#{self.id} {self.name}"

    @classmethod
    def of(cls, run: Run) -> "RunInfo":
        return cls(run.id, run.name, run.group_name, run.status.value, dict(run.config or {}),
                   dict(run.summary or {}), run.started_at, run.finished_at, run.error, run.worker_id,
                   run.progress_step, run.attempts)


def final_figure(summary: dict[str, Any]) -> Optional[float]:
    for key in ("test_accuracy", "test_mse"):
        if summary.get(key) is not None:
            return round(summary[key], 4)
    return None


def progress(run: Run) -> Optional[float]:
    """progress_step over the config's max_steps (0..1), when max_steps is set."""
    max_steps = (run.config or {}).get("max_steps")
    if not max_steps:
        return None
    if run.status == RunStatus.SUCCEEDED:
        return 1.0
    if run.status == RunStatus.QUEUED:  # a re-queued run starts over
        return 0.0
    return min(1.0, (run.progress_step or 0) / max_steps)


def run_rows(session: Session, limit: int = 1000) -> list[dict[str, Any]]:
    """One dict per run, newest first, with the columns the Runs table shows."""
    rows = []
    for run in queue.list_runs(session, limit=limit):
        config, latest = run.config or {}, run.latest or {}
        age = queue.run_age(run)
        rows.append({
            "id": run.id, "name": run.name, "group": run.group_name, "status": run.status.value,
            "task": config.get("task"), "cell": config.get("cell"), "mode": config.get("mode"),
            "progress": progress(run), "steps": run.progress_step,
            "ms/step": (run.summary or {}).get("median_step_ms"),
            "elapsed s": None if age is None else round(age.total_seconds(), 1),
            "loss": latest.get("loss"), "accuracy": latest.get("accuracy"),
            "final": final_figure(run.summary or {}), "worker": run.worker_id,
            "error": (run.error or "").split("\n", 1)[0] or None, "error_text": run.error,
        })
    return rows


def filter_rows(rows: Sequence[dict[str, Any]], **chosen: Sequence[Any]) -> list[dict[str, Any]]:
    """Rows whose column values are among the chosen ones (an empty choice keeps every row)."""
    return [row for row in rows if all(not values or row.get(column) in values for column, values in chosen.items())]


def worker_health(session: Session, within: timedelta) -> dict[str, Any]:
    """Live workers and whether queued runs are waiting with nobody to run them."""
    workers = queue.live_workers(session, within)
    waiting = queue.count_queued(session)
    running = session.scalar(select(Run.id).where(Run.status == RunStatus.RUNNING).limit(1)) is not None
    return {"workers": [{"id": w.id, "host": w.host, "pid": w.pid, "last heartbeat": w.heartbeat_at,
                         "run": w.current_run_id} for w in workers],
            "queued": waiting, "active": waiting > 0 or running, "stranded": waiting > 0 and not workers}


def run_infos(session: Session, run_ids: Sequence[int]) -> list[RunInfo]:
    """The runs with these ids, in the order given (missing ids are skipped)."""
    found = {run.id: run for run in session.scalars(select(Run).where(Run.id.in_(list(run_ids))))}
    return [RunInfo.of(found[run_id]) for run_id in run_ids if run_id in found]


def points_frame(session: Session, run_id: int, started_at: Optional[datetime]) -> pd.DataFrame:
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
    return pd.DataFrame({
        "run_id": np.full(len(values), run_id), "metric": names, "step": values[:, 0].astype(np.int64),
        "seconds": values[:, 1], "value": values[:, 2],
        "wall": np.where(np.isnan(values[:, 3]), estimated, values[:, 3]),
    }, columns=POINT_COLUMNS)


def concat_points(frames: Sequence[pd.DataFrame]) -> pd.DataFrame:
    frames = [frame for frame in frames if len(frame)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=POINT_COLUMNS)
