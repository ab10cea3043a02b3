"""SQLAlchemy 2.0 models: runs, their metric points, and the workers that execute them.

The tables know nothing of TensorFlow or Streamlit. Times are stored as UTC; every
status change goes through db.queue, which guards it with the expected status.
"""

from __future__ import annotations

import enum
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    false,
    literal_column,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator):
    """A timestamp stored as naive UTC and read back timezone-aware.

    SQLite has no time zones; storing naive UTC everywhere keeps comparisons such as
    "heartbeat older than 30 s" correct on SQLite and PostgreSQL alike.
    """

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("UTCDateTime needs an aware datetime")
        return value.astimezone(timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=timezone.utc)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class RunStatus(str, enum.Enum):
    """A run's life: queued -> running -> succeeded | failed | cancelled (a failed or cancelled run
    goes back to queued when retried)."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


FINISHED_STATUSES = (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON()}


class Run(Base):
    """One training job with one validated config, and what came of it."""

    __tablename__ = "runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200))
    group_name: Mapped[str | None] = mapped_column(String(200), index=True)
    status: Mapped[RunStatus] = mapped_column(
        Enum(
            RunStatus,
            name="run_status",
            native_enum=False,
            length=16,
            values_callable=lambda statuses: [status.value for status in statuses],
        ),
        default=RunStatus.QUEUED,
    )
    config: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    heartbeat_at: Mapped[datetime | None]
    worker_id: Mapped[str | None] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(default=0)
    cancel_requested: Mapped[bool] = mapped_column(default=False)
    error: Mapped[str | None] = mapped_column(Text)
    summary: Mapped[dict[str, Any] | None]
    # Latest figures, updated with each batch of points, so a run table needs no scan of metrics.
    progress_step: Mapped[int | None]
    latest: Mapped[dict[str, Any] | None]
    # Bumped by every UPDATE made through SQLAlchemy (heartbeats excepted): with the row count and the highest
    # id it makes the store's change token, which pages poll without trusting any machine's clock.
    change_count: Mapped[int] = mapped_column(
        default=0, server_default="0", onupdate=literal_column("change_count") + 1
    )
    # The run this one was launched again from ("Run again"); kept when that run is deleted.
    rerun_of: Mapped[int | None]
    # The last lines its worker logged while running it, so they can be read from any machine.
    log_tail: Mapped[str | None] = mapped_column(Text)
    # What people add to find and remember a run (db.queue.annotate): never part of its results.
    # Tags are stored normalised and space-separated (a tag never holds a space), so one LIKE finds
    # a tag on SQLite and PostgreSQL alike; read them with `tag_list`.
    tags: Mapped[str] = mapped_column(Text, default="", server_default="")
    notes: Mapped[str | None] = mapped_column(Text)
    starred: Mapped[bool] = mapped_column(default=False, server_default=false())

    __table_args__ = (
        # The claim query picks the oldest queued run: this index is exactly that query.
        Index(
            "ix_runs_queued", "id", sqlite_where=text("status = 'queued'"), postgresql_where=text("status = 'queued'")
        ),
        Index(
            "ix_runs_running_heartbeat",
            "heartbeat_at",
            sqlite_where=text("status = 'running'"),
            postgresql_where=text("status = 'running'"),
        ),
        # AUTOINCREMENT: SQLite never hands out a deleted run's id again, so a shared link to
        # run 10 can never come to show another run (PostgreSQL's sequence never reuses ids).
        {"sqlite_autoincrement": True},
    )

    @property
    def tag_list(self) -> list[str]:
        """The run's tags, in the order they were given."""
        return (self.tags or "").split()


class MetricPoint(Base):
    """One value of one named curve at one step: (run, name, step) -> (seconds, value).

    Clustered on its primary key (no rowid on SQLite), so a run's curve is one range scan.
    """

    __tablename__ = "metric_points"

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    step: Mapped[int] = mapped_column(Integer, primary_key=True)
    seconds: Mapped[float] = mapped_column(Float)
    # NULL stands for NaN: SQLite cannot store NaN, and a diverged loss must keep its point.
    value: Mapped[float | None] = mapped_column(Float)
    # When the point was recorded (epoch seconds); NULL for points stored before revision 0002.
    wall: Mapped[float | None] = mapped_column(Float)

    __table_args__ = ({"sqlite_with_rowid": False},)


class Worker(Base):
    """A process that claims and executes runs; alive while its heartbeat is recent."""

    __tablename__ = "workers"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int]
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(default=utcnow)
    stopped_at: Mapped[datetime | None]
    current_run_id: Mapped[int | None]
