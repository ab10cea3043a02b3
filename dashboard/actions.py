"""What a person can do to stored runs, shared by the Runs and Run pages (no Streamlit here).

Each action says which statuses it applies to and whether it asks for a confirmation;
`apply` checks the dashboard's write rules (read-only mode, launch password) on the server
before touching anything, then applies the action to each run in its own transaction, so
one refusal (a run that finished meanwhile) does not undo the others.

A succeeded run is a result: it can be run again (a new run, linked back) or deleted, never
changed in place. Only failed or cancelled runs can be retried in place. Its name, tags, notes
and star are metadata: `annotate` changes them on a run in any status, under the same write
rules.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from dashboard.launching import check_step_limit
from dashboard.settings import NotAllowed, Settings
from db import queue
from db.models import FINISHED_STATUSES, RunStatus
from db.run_config import ConfigError, validate_config

Message = tuple[str, str]  # (kind, text): kind is a Streamlit status element (success, error, info)


@dataclass(frozen=True)
class Action:
    key: str
    label: str
    statuses: tuple[RunStatus, ...]
    apply: Callable[[Session, int, Settings], str]
    confirm: str | None = None  # a question ({runs} stands for the list), asked before applying

    def question(self, runs: str) -> str:
        """The confirmation question for these runs (an action that asks none is applied at once)."""
        return (self.confirm or "Apply {runs}?").format(runs=runs)


def _within_limits(session: Session, run_id: int, settings: Settings) -> None:
    """A run from the command line may exceed this host's step cap: refuse to run it again here."""
    stored = queue.get_run(session, run_id)
    if stored is not None:
        check_step_limit([validate_config(stored.config)], settings.max_steps)


def _cancel(session: Session, run_id: int, _settings: Settings) -> str:
    status = queue.request_cancel(session, run_id)
    return "cancelled" if status == RunStatus.CANCELLED else "cancel requested: its worker stops within seconds"


def _rerun(session: Session, run_id: int, settings: Settings) -> str:
    _within_limits(session, run_id, settings)
    return f"queued again as run {queue.rerun(session, run_id, max_queued=settings.max_queued)}"


def _retry(session: Session, run_id: int, settings: Settings) -> str:
    _within_limits(session, run_id, settings)
    queue.retry(session, run_id, max_queued=settings.max_queued)
    return "queued for a retry"


def _delete(session: Session, run_id: int, _settings: Settings) -> str:
    queue.delete_run(session, run_id)
    return "deleted"


ACTIONS: dict[str, Action] = {
    action.key: action
    for action in (
        Action("cancel", "Cancel", (RunStatus.QUEUED, RunStatus.RUNNING), _cancel),
        Action("rerun", "Run again", FINISHED_STATUSES, _rerun),
        Action(
            "retry",
            "Retry…",
            queue.RETRYABLE,
            _retry,
            confirm="Retry {runs} in place? Their points, figures and errors are deleted and they run again "
            "from the start. (Run again keeps them and makes a new run instead.)",
        ),
        Action(
            "delete",
            "Delete…",
            (RunStatus.QUEUED, *FINISHED_STATUSES),
            _delete,
            confirm="Delete {runs} and all their points? This cannot be undone.",
        ),
    )
}


def applicable(statuses: Sequence[str]) -> list[Action]:
    """The actions that apply to at least one of the runs with these statuses."""
    present = {RunStatus(status) for status in statuses}
    return [action for action in ACTIONS.values() if present & set(action.statuses)]


def apply(
    key: str, run_ids: Sequence[int], factory: sessionmaker[Session], settings: Settings, password: str | None
) -> list[Message]:
    """Apply an action to the runs, each on its own; one message per run (or one refusal)."""
    if not run_ids:
        return [("info", "Select runs in the table first (click the boxes at the left of the rows).")]
    try:
        settings.check_write(password)
    except NotAllowed as refused:
        return [("error", str(refused))]
    action, messages = ACTIONS[key], []
    for run_id in run_ids:
        try:
            with factory.begin() as session:
                messages.append(("success", f"Run {run_id}: {action.apply(session, run_id, settings)}"))
        except (queue.TransitionError, queue.QueueFullError, ConfigError) as refused:
            messages.append(("error", str(refused)))
    return messages


def annotate(
    run_id: int,
    factory: sessionmaker[Session],
    settings: Settings,
    password: str | None,
    *,
    name: str,
    tags: str,
    notes: str,
    starred: bool,
) -> list[Message]:
    """Rename, tag (comma-separated tags), note and star a run, after the same server-side checks as
    every action (read-only mode, the launch password): a refusal, or input that breaks a rule
    (one message per field, naming it), stores nothing."""
    try:
        settings.check_write(password)
    except NotAllowed as refused:
        return [("error", str(refused))]
    try:
        with factory.begin() as session:
            queue.annotate(session, run_id, name=name, tags=tags, notes=notes, starred=starred)
    except ConfigError as refused:
        return [("error", f"{field}: {message}") for field, message in refused.errors]
    except queue.TransitionError as refused:
        return [("error", str(refused))]
    return [("success", f"Run {run_id}: name, tags, notes and star saved")]
