"""Read models for the pages: plain functions over a session, returning plain rows."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from db import queue
from db.models import Run, RunStatus

ACTIVE = (RunStatus.QUEUED, RunStatus.RUNNING)


def _final_figure(run: Run) -> Any:
    summary = run.summary or {}
    for key in ("test_accuracy", "test_mse"):
        if summary.get(key) is not None:
            return round(summary[key], 4)
    return None


def run_rows(session: Session, limit: int = 1000) -> list[dict[str, Any]]:
    """One dict per run, newest first, with the columns the Runs table shows."""
    rows = []
    for run in queue.list_runs(session, limit=limit):
        config, latest = run.config or {}, run.latest or {}
        age = queue.run_age(run)
        rows.append({
            "id": run.id, "name": run.name, "group": run.group_name, "status": run.status.value,
            "task": config.get("task"), "cell": config.get("cell"), "mode": config.get("mode"),
            "steps": run.progress_step, "elapsed s": None if age is None else round(age.total_seconds(), 1),
            "loss": latest.get("loss"), "accuracy": latest.get("accuracy"),
            "final": _final_figure(run), "worker": run.worker_id,
            "error": (run.error or "").split("\n", 1)[0] or None,
        })
    return rows


def worker_health(session: Session, within: timedelta) -> dict[str, Any]:
    """Live workers and whether queued runs are waiting with nobody to run them."""
    workers = queue.live_workers(session, within)
    waiting = queue.count_queued(session)
    return {"workers": [{"id": w.id, "host": w.host, "pid": w.pid, "last heartbeat": w.heartbeat_at,
                         "run": w.current_run_id} for w in workers],
            "queued": waiting, "stranded": waiting > 0 and not workers}
