"""The run queue: every status change is one guarded statement.

Each transition is a single UPDATE whose WHERE clause names the status (and, for a
worker, the owner) it expects, and whose row count is checked: there is no
read-then-write window in which two processes can both believe they own a run. The
same statements work on SQLite (writes are serialised) and PostgreSQL (the claim's
pick uses FOR UPDATE SKIP LOCKED, so concurrent workers never wait on each other).

Functions take a Session; the caller owns the transaction (`with factory.begin() as s:`).

Life of a run:

    queued --claim_next--> running --finish--> succeeded
       ^                      |------fail / reap("worker lost")--> failed
       |                      |------mark_cancelled (after request_cancel)--> cancelled
       |------release---------|   (a worker shutting down hands its run back; its points go)
       |------retry----------- failed | cancelled   (its points and figures are cleared)
    queued --request_cancel--> cancelled

Annotations (`annotate`: a name, tags, notes, a star) are metadata: they can change on a
run in any status, never touch its config, summary or points, and bump its change counter
like any other UPDATE, so pages showing the run redraw.

A run that is reaped becomes *failed* with the reason "worker lost" and keeps every
metric point written before its worker died; retrying it is the user's choice. A
succeeded run is never changed again: `rerun` launches a new run with its config (and a
link back to it); only `delete_run` removes its points.

Every UPDATE of a run made through SQLAlchemy bumps its change_count (the column's onupdate;
heartbeats excepted), so `change_token` moves whenever anything a page shows has changed,
in any process on any machine.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

import numpy as np
from sqlalchemy import case, delete, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import CursorResult, Result
from sqlalchemy.orm import Session

from db.models import FINISHED_STATUSES, MetricPoint, Run, RunStatus, Worker, utcnow
from db.run_config import ConfigError, RunConfig, config_to_json, validate_config
from db.summary import RunSummary, StoredSummary

WORKER_LOST = "worker lost"
# How long a running run may go without a heartbeat before any worker or dashboard fails it.
STALE_AFTER_SECONDS = 30.0


class TransitionError(RuntimeError):
    """A status change was refused because the run was not in the expected state."""


class QueueFullError(RuntimeError):
    """Enqueueing would exceed the queue limit; nothing was stored."""


@dataclass(frozen=True)
class Point:
    """One value of one named curve: `seconds` is the run's clock (0 at the end of step 1),
    `wall` the time it was recorded at (epoch seconds), when known."""

    name: str
    step: int
    seconds: float
    value: float
    wall: float | None = None


def _rowcount(result: Result[Any]) -> int:
    """Rows an UPDATE or DELETE matched (session.execute returns a CursorResult for them)."""
    return cast(CursorResult[Any], result).rowcount


def _describe(session: Session, run_id: int) -> str:
    """For error messages only, after a guarded statement matched no row."""
    status = session.scalar(select(Run.status).where(Run.id == run_id))
    return f"run {run_id} does not exist" if status is None else f"run {run_id} is {status.value}"


def _transition(session: Session, run_id: int, action: str, where: Sequence[Any], values: dict[str, Any]) -> None:
    """Apply `values` to the run if it matches `where`; refuse with a clear error otherwise."""
    result = session.execute(update(Run).where(Run.id == run_id, *where).values(**values))
    if _rowcount(result) != 1:
        raise TransitionError(f"cannot {action}: {_describe(session, run_id)}")


def _owned_by(worker_id: str) -> tuple[Any, ...]:
    return (Run.status == RunStatus.RUNNING, Run.worker_id == worker_id)


# What a run looks like before its first claim: figures of an earlier attempt must not linger.
NOT_STARTED = {
    "worker_id": None,
    "started_at": None,
    "finished_at": None,
    "heartbeat_at": None,
    "cancel_requested": False,
    "error": None,
    "summary": None,
    "progress_step": None,
    "latest": None,
    "log_tail": None,
}


def change_token(session: Session) -> tuple[int, int, int]:
    """(runs, sum of change counts, highest id): moves whenever a run is added, changed or
    deleted, by any process. One aggregate over the runs table: cheap enough to poll every
    couple of seconds, and independent of the writers' clocks."""
    count, changes, highest = session.execute(
        select(func.count(), func.coalesce(func.sum(Run.change_count), 0), func.coalesce(func.max(Run.id), 0))
    ).one()
    return int(count), int(changes), int(highest)


# --- enqueue ---------------------------------------------------------------------------


def count_queued(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Run).where(Run.status == RunStatus.QUEUED)) or 0


def enqueue_many(
    session: Session,
    configs: Iterable[RunConfig | dict[str, Any]],
    group: str | None = None,
    max_queued: int | None = None,
) -> list[int]:
    """Validate every config, then store them all as queued runs; all or nothing.

    Raises db.run_config.ConfigError (naming the field) before anything is stored, and
    QueueFullError when `max_queued` would be exceeded.
    """
    validated = [validate_config(config) for config in configs]
    if max_queued is not None:
        waiting = count_queued(session)
        if waiting + len(validated) > max_queued:
            raise QueueFullError(
                f"the queue holds {waiting} runs and takes at most {max_queued}: "
                f"{len(validated)} more would not fit; wait for runs to finish or cancel some"
            )
    rows = [Run(name=config.name, group_name=group, config=config_to_json(config)) for config in validated]
    session.add_all(rows)
    session.flush()
    return [row.id for row in rows]


def _check_room(session: Session, max_queued: int | None, what: str) -> None:
    if max_queued is not None and count_queued(session) >= max_queued:
        raise QueueFullError(f"the queue already holds {max_queued} runs, its limit: {what}")


def enqueue(
    session: Session, config: RunConfig | dict[str, Any], group: str | None = None, max_queued: int | None = None
) -> int:
    """Validate and store one run; returns its id."""
    return enqueue_many(session, [config], group=group, max_queued=max_queued)[0]


# --- the worker's side -----------------------------------------------------------------


def _claim(session: Session, worker_id: str, which) -> Run | None:
    """Move the run chosen by `which` from queued to running for `worker_id`, atomically."""
    now = utcnow()
    claimed = session.execute(
        update(Run)
        .where(Run.id == which, Run.status == RunStatus.QUEUED)
        .values(
            {
                **NOT_STARTED,
                "status": RunStatus.RUNNING,
                "worker_id": worker_id,
                "started_at": now,
                "heartbeat_at": now,
                "attempts": Run.attempts + 1,
            }
        )
        .returning(Run.id, Run.attempts)
    ).first()
    if claimed is None:
        return None
    run_id, attempts = claimed
    if attempts > 1:  # an earlier attempt's curve is superseded by this one
        session.execute(delete(MetricPoint).where(MetricPoint.run_id == run_id))
    return session.get(Run, run_id, populate_existing=True)


def claim_next(session: Session, worker_id: str) -> Run | None:
    """Atomically take the oldest queued run for `worker_id`, or None when none is left."""
    oldest = (
        select(Run.id)
        .where(Run.status == RunStatus.QUEUED)
        .order_by(Run.id)
        .limit(1)
        .with_for_update(skip_locked=True)  # PostgreSQL; SQLite serialises writers instead
        .scalar_subquery()
    )
    return _claim(session, worker_id, oldest)


def claim(session: Session, run_id: int, worker_id: str) -> Run:
    """Take one particular queued run (the command line runs what it just queued)."""
    run = _claim(session, worker_id, run_id)
    if run is None:
        raise TransitionError(f"cannot claim: {_describe(session, run_id)}")
    return run


def heartbeat(session: Session, run_id: int, worker_id: str) -> None:
    """Tell the reaper the run's worker is alive; TransitionError if the run is no longer ours.

    A heartbeat changes nothing a page shows, so it leaves the change counter alone."""
    _transition(
        session, run_id, "heartbeat", _owned_by(worker_id), {"heartbeat_at": utcnow(), "change_count": Run.change_count}
    )


def cancel_requested(session: Session, run_id: int) -> bool:
    """Whether someone asked to stop the run (a cheap read the worker polls)."""
    return bool(session.scalar(select(Run.cancel_requested).where(Run.id == run_id)))


def cancels_requested(session: Session, run_ids: Collection[int]) -> dict[int, int]:
    """Which of `run_ids` someone asked to stop, each with the steps it has taken: one read for a
    dispatcher that holds many runs (the Ray executor's backstop for a task that does not stop on its own)."""
    if not run_ids:
        return {}
    found = session.execute(select(Run.id, Run.progress_step).where(Run.id.in_(run_ids), Run.cancel_requested))
    return {run_id: progress or 0 for run_id, progress in found}


def _stored_value(value: float) -> float | None:
    """NaN becomes NULL (SQLite cannot hold NaN); infinities are kept."""
    value = float(value)
    return None if math.isnan(value) else value


def json_safe(value: Any) -> Any:
    """Non-finite floats become None: JSON (and PostgreSQL's json type) has no NaN or Infinity."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    return value


def append_metrics(session: Session, run_id: int, worker_id: str, points: Sequence[Point]) -> None:
    """Store a batch of points for a run the worker owns, and its latest figures for tables."""
    if not points:
        return
    last_step = max(point.step for point in points)
    latest = json_safe({point.name: float(point.value) for point in points if point.step == last_step})
    _transition(
        session,
        run_id,
        "record metrics",
        _owned_by(worker_id),
        {"progress_step": last_step, "latest": latest, "heartbeat_at": utcnow()},
    )
    rows = [
        {
            "run_id": run_id,
            "name": p.name,
            "step": p.step,
            "seconds": p.seconds,
            "value": _stored_value(p.value),
            "wall": p.wall,
        }
        for p in points
    ]
    # A batch written again after a commit whose outcome was unclear must not fail on its own rows.
    session.execute(_insert_ignoring_duplicates(session), rows)


def _insert_ignoring_duplicates(session: Session):
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql_insert(MetricPoint).on_conflict_do_nothing()
    if dialect == "sqlite":
        return sqlite_insert(MetricPoint).on_conflict_do_nothing()
    return insert(MetricPoint)


def finish(session: Session, run_id: int, worker_id: str, summary: StoredSummary) -> None:
    """running -> succeeded, with the run's summary figures (`RunSummary.to_stored()`)."""
    _transition(
        session,
        run_id,
        "finish",
        _owned_by(worker_id),
        {"status": RunStatus.SUCCEEDED, "summary": json_safe(summary), "finished_at": utcnow()},
    )


def fail(
    session: Session,
    run_id: int,
    worker_id: str,
    error: str,
    summary: StoredSummary | None = None,
    log_tail: str | None = None,
) -> None:
    """running -> failed, keeping the error text, the worker's last log lines and every point stored."""
    _transition(
        session,
        run_id,
        "fail",
        _owned_by(worker_id),
        {
            "status": RunStatus.FAILED,
            "error": error,
            "summary": json_safe(summary),
            "finished_at": utcnow(),
            "log_tail": log_tail,
        },
    )


def mark_cancelled(session: Session, run_id: int, worker_id: str, summary: StoredSummary | None = None) -> None:
    """running -> cancelled, once the worker has stopped training."""
    _transition(
        session,
        run_id,
        "mark cancelled",
        _owned_by(worker_id),
        {"status": RunStatus.CANCELLED, "summary": json_safe(summary), "finished_at": utcnow()},
    )


def release(session: Session, run_id: int, worker_id: str) -> None:
    """running -> queued: a worker shutting down hands its run back for another worker.

    A run whose cancel was requested meanwhile becomes cancelled instead: the request is
    not lost when the next claim clears the flag.
    """
    handed_back = case((Run.cancel_requested, RunStatus.CANCELLED.value), else_=RunStatus.QUEUED.value)

    def unless_cancelled(column):  # a cancelled run keeps what it did; a queued one starts over
        return case((Run.cancel_requested, column), else_=None)

    _transition(
        session,
        run_id,
        "release",
        _owned_by(worker_id),
        {
            "status": handed_back,
            "worker_id": None,
            "heartbeat_at": None,
            "started_at": unless_cancelled(Run.started_at),
            "finished_at": case((Run.cancel_requested, utcnow()), else_=None),
            "progress_step": unless_cancelled(Run.progress_step),
            "latest": unless_cancelled(Run.latest),
        },
    )
    if session.scalar(select(Run.status).where(Run.id == run_id)) == RunStatus.QUEUED:
        session.execute(delete(MetricPoint).where(MetricPoint.run_id == run_id))  # it starts over


# --- the user's side -------------------------------------------------------------------


def request_cancel(session: Session, run_id: int) -> RunStatus:
    """Cancel a queued run at once, or ask the worker of a running one to stop.

    Returns the status the run is in afterwards (running until its worker reacts).
    """
    queued = session.execute(
        update(Run)
        .where(Run.id == run_id, Run.status == RunStatus.QUEUED)
        .values(status=RunStatus.CANCELLED, finished_at=utcnow())
    )
    if _rowcount(queued) == 1:
        return RunStatus.CANCELLED
    _transition(session, run_id, "cancel", [Run.status == RunStatus.RUNNING], {"cancel_requested": True})
    return RunStatus.RUNNING


RETRYABLE = (RunStatus.FAILED, RunStatus.CANCELLED)


def retry(session: Session, run_id: int, max_queued: int | None = None) -> None:
    """A failed or cancelled run goes back to the queue in place, its points and figures cleared.

    A succeeded run is a result, not a retry candidate: `rerun` makes a new run from it.
    QueueFullError when `max_queued` runs are already waiting.
    """
    _check_room(session, max_queued, f"run {run_id} was not retried")
    _transition(session, run_id, "retry", [Run.status.in_(RETRYABLE)], {"status": RunStatus.QUEUED, **NOT_STARTED})
    session.execute(delete(MetricPoint).where(MetricPoint.run_id == run_id))


def rerun(session: Session, run_id: int, max_queued: int | None = None) -> int:
    """Queue a new run with the config and group of a finished one, linked back to it; returns its id.

    The original stays as it is. TransitionError when it does not exist or has not finished.
    """
    original = session.get(Run, run_id)
    if original is None or original.status not in FINISHED_STATUSES:
        raise TransitionError(f"cannot run again: {_describe(session, run_id)}")
    _check_room(session, max_queued, f"run {run_id} was not run again")
    config = validate_config(original.config)
    # Under the name the run has now: a renamed run is run again as what people call it.
    row = Run(name=original.name, group_name=original.group_name, config=config_to_json(config), rerun_of=run_id)
    session.add(row)
    session.flush()
    return row.id


# --- annotations ---------------------------------------------------------------------

MAX_NAME = 200  # RunConfig.name's limit: a renamed run fits where its first name did
MAX_TAG_LENGTH = 32
MAX_TAGS = 20
MAX_NOTES = 10_000
TAG_RULE = f"1 to {MAX_TAG_LENGTH} characters among a-z, 0-9, '-', '_' and '.'"
_TAG = re.compile(rf"[a-z0-9._-]{{1,{MAX_TAG_LENGTH}}}")
_SHOWN = 40  # characters of a refused value, in a message


def _quoted(value: object) -> str:
    """A refused value as a message shows it: quoted and cut (it may be a pasted essay)."""
    text = str(value)
    return repr(text if len(text) <= _SHOWN else text[:_SHOWN] + "…")


def normalise_tags(tags: Iterable[str]) -> list[str]:
    """Tags as stored: trimmed, lower-case, each once, in the order given; blanks are dropped.

    ConfigError names every tag that breaks TAG_RULE (and too many tags), so a person fixes
    them all at once. A lone string is read as comma-separated tags, never letter by letter.
    """
    if isinstance(tags, str):
        tags = tags.split(",")
    found: list[str] = []
    problems: list[tuple[str, str]] = []
    for given in tags:
        tag = given.strip().lower() if isinstance(given, str) else None
        if tag == "":
            continue
        if tag is None or not _TAG.fullmatch(tag):
            problems.append(
                ("tags", f"{_quoted(given if tag is None else given.strip())} is not a tag: use {TAG_RULE}")
            )
        elif tag not in found:
            found.append(tag)
    if len(found) > MAX_TAGS:
        problems.append(("tags", f"a run takes at most {MAX_TAGS} tags, not {len(found)}"))
    if problems:
        raise ConfigError(problems)
    return found


def parse_tags(text: str) -> list[str]:
    """Comma-separated tags ("baseline, E1"), as the dashboard's box and --tag take them, normalised."""
    return normalise_tags(text.split(","))


def _checked_text(value: object, limit: int, blank_ok: bool) -> tuple[str | None, str | None]:
    """(the trimmed text, None) or (None, why it is refused)."""
    if not isinstance(value, str):
        return None, f"must be text, not {type(value).__name__}"
    text = value.strip()
    if not text and not blank_ok:
        return None, "must not be blank"
    if len(text) > limit:
        return None, f"must be at most {limit:,} characters, not {len(text):,}"
    return text, None


def annotation_values(
    name: str | None = None,
    tags: Iterable[str] | None = None,
    notes: str | None = None,
    starred: bool | None = None,
) -> dict[str, Any]:
    """The runs-table values of an annotation, every given field checked; None leaves a field as it is.

    One ConfigError lists every refused field, before anything is stored (the command line
    checks its --tag and --note with this before it trains anything).
    """
    values: dict[str, Any] = {}
    problems: list[tuple[str, str]] = []
    if name is not None:
        text, problem = _checked_text(name, MAX_NAME, blank_ok=False)
        problems += [("name", problem)] if problem else []
        values["name"] = text
    if notes is not None:
        text, problem = _checked_text(notes, MAX_NOTES, blank_ok=True)
        problems += [("notes", problem)] if problem else []
        values["notes"] = text or None  # blank notes are no notes
    if starred is not None:
        if not isinstance(starred, bool):
            problems.append(("starred", f"must be true or false, not {_quoted(starred)}"))
        values["starred"] = starred
    if tags is not None:
        try:
            values["tags"] = " ".join(normalise_tags(tags))
        except ConfigError as refused:
            problems += refused.errors
    if problems:
        raise ConfigError(problems)
    return values


def annotate(
    session: Session,
    run_id: int,
    name: str | None = None,
    tags: Iterable[str] | None = None,
    notes: str | None = None,
    starred: bool | None = None,
) -> None:
    """Rename, tag, note or star a run, whatever its status: metadata, so its config, summary and
    points stay exactly as they are (a succeeded run stays a record). `tags` (a list, or one
    comma-separated string) replaces the run's tags ([] clears them), `notes=""` clears the notes,
    and None keeps a field as it is.

    ConfigError (naming each field) stores nothing; TransitionError when the run does not exist.
    The UPDATE bumps change_count, so every page showing the run redraws.
    """
    values = annotation_values(name, tags, notes, starred)
    if values:
        _transition(session, run_id, "annotate", [], values)
    elif session.scalar(select(Run.id).where(Run.id == run_id)) is None:
        raise TransitionError(f"cannot annotate: {_describe(session, run_id)}")


def delete_run(session: Session, run_id: int) -> None:
    """Delete a run that is not running, with its points (a running run must be cancelled first)."""
    result = session.execute(delete(Run).where(Run.id == run_id, Run.status != RunStatus.RUNNING))
    if _rowcount(result) != 1:
        raise TransitionError(f"cannot delete: {_describe(session, run_id)}")
    session.execute(delete(MetricPoint).where(MetricPoint.run_id == run_id))  # in case foreign keys are off


def reap(session: Session, stale_after: timedelta) -> list[int]:
    """Fail every running run whose worker has not heart-beaten for `stale_after`.

    The run keeps its points; its error says the worker was lost and since when.
    """
    cutoff = utcnow() - stale_after
    stale = select(Run.id).where(Run.status == RunStatus.RUNNING, Run.heartbeat_at < cutoff).limit(1)
    if session.scalar(stale) is None:  # the common case: a read on the partial index, no write lock
        return []
    reaped = session.execute(
        update(Run)
        .where(Run.status == RunStatus.RUNNING, Run.heartbeat_at < cutoff)
        .values(
            status=RunStatus.FAILED,
            finished_at=utcnow(),
            error=f"{WORKER_LOST}: no heartbeat for more than {stale_after.total_seconds():g} s",
        )
        .returning(Run.id)
    )
    return sorted(reaped.scalars())


# --- workers ---------------------------------------------------------------------------


def register_worker(session: Session, worker_id: str, host: str, pid: int) -> None:
    session.add(Worker(id=worker_id, host=host, pid=pid))
    session.flush()


def worker_heartbeat(session: Session, worker_id: str, current_run_id: int | None) -> None:
    session.execute(
        update(Worker).where(Worker.id == worker_id).values(heartbeat_at=utcnow(), current_run_id=current_run_id)
    )


def stop_worker(session: Session, worker_id: str) -> None:
    session.execute(update(Worker).where(Worker.id == worker_id).values(stopped_at=utcnow(), current_run_id=None))


def live_workers(session: Session, within: timedelta) -> list[Worker]:
    """Workers that have not stopped and heart-beat within `within`."""
    cutoff = utcnow() - within
    return list(
        session.scalars(
            select(Worker).where(Worker.stopped_at.is_(None), Worker.heartbeat_at >= cutoff).order_by(Worker.started_at)
        )
    )


# --- reading ---------------------------------------------------------------------------


def get_run(session: Session, run_id: int) -> Run | None:
    return session.get(Run, run_id)


def run_summary(session: Session, run_id: int) -> RunSummary | None:
    """A run's stored summary, read leniently (see db.summary); None when the run has none or does not exist."""
    stored = session.scalar(select(Run.summary).where(Run.id == run_id))
    return None if stored is None else RunSummary.from_stored(stored)


def list_runs(
    session: Session, limit: int = 1000, offset: int = 0, where: Sequence[Any] = (), order_by: Sequence[Any] = ()
) -> list[Run]:
    """The `limit` runs after the first `offset` of those matching `where`, in `order_by` (newest
    first when none is given; the id always breaks ties, so pages never overlap)."""
    order = [*order_by, Run.id.desc()]
    return list(session.scalars(select(Run).where(*where).order_by(*order).offset(offset).limit(limit)))


def count_runs(session: Session, where: Sequence[Any] = ()) -> int:
    return session.scalar(select(func.count()).select_from(Run).where(*where)) or 0


@dataclass(frozen=True)
class Curve:
    """One named curve of one run, as parallel lists (NaN where a value was not finite)."""

    steps: list[int]
    seconds: list[float]
    values: list[float]


def curve_arrays(session: Session, run_id: int, names: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """A run's curves as float arrays [n, 4] of (step, seconds, value, wall), in step order.

    NaN stands for a NULL value (not finite) or an unknown wall time. One range scan of the
    primary key per curve, read straight from the driver's cursor into NumPy: building an
    SQLAlchemy Row (or a Python string) per point costs more than the query itself.
    """
    connection = session.connection()
    if names is None:
        names = (
            connection.execute(
                select(MetricPoint.name).where(MetricPoint.run_id == run_id).distinct().order_by(MetricPoint.name)
            )
            .scalars()
            .all()
        )
    curves = {}
    for name in names:
        result = connection.execute(
            select(MetricPoint.step, MetricPoint.seconds, MetricPoint.value, MetricPoint.wall)
            .where(MetricPoint.run_id == run_id, MetricPoint.name == name)
            .order_by(MetricPoint.step)
        )
        try:
            rows = result.cursor.fetchall()
        finally:
            result.close()
        if rows:
            curves[name] = np.array(rows, dtype=float)
    return curves


def load_curves(session: Session, run_id: int, names: Sequence[str] | None = None) -> dict[str, Curve]:
    """Every curve of a run (or the named ones), in step order."""
    return {
        name: Curve(array[:, 0].astype(int).tolist(), array[:, 1].tolist(), array[:, 2].tolist())
        for name, array in curve_arrays(session, run_id, names).items()
    }


def run_age(run: Run, now: datetime | None = None) -> timedelta | None:
    """How long a run has been running (or ran), for tables."""
    if run.started_at is None:
        return None
    end = run.finished_at or now or utcnow()
    return end - run.started_at
