"""Where the runs live: the engine, its SQLite settings, and the schema's version.

A SQLite file `unroll.db` in the working directory by default; `UNROLL_DB_URL` (any
SQLAlchemy URL) points every process (dashboard, workers, command line) elsewhere, for
example at a PostgreSQL server shared by several machines.

The schema is created on first use and migrated with Alembic, so a newer Unroll opens
an older database and upgrades it in place without losing runs.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from typing import Iterator, Optional

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

DEFAULT_DB_URL = "sqlite:///unroll.db"
SQLITE_BUSY_TIMEOUT_MS = 30_000
MIGRATIONS_DIR = Path(__file__).with_name("migrations")
# Any fixed number: PostgreSQL advisory lock that serialises concurrent first-time migrations.
_MIGRATION_LOCK_KEY = 7_301_946


class SchemaTooNewError(RuntimeError):
    """The database was written by a newer Unroll than this one."""


def database_url(url: Optional[str] = None) -> str:
    """The URL to use: an explicit one, else UNROLL_DB_URL, else the local SQLite file."""
    return url or os.environ.get("UNROLL_DB_URL") or DEFAULT_DB_URL


def masked_url(url: str) -> str:
    """The URL with any password replaced by ***, safe for logs and pages."""
    return make_url(url).render_as_string(hide_password=True)


def _configure_sqlite(dbapi_connection, _record) -> None:
    """WAL lets readers (the dashboard) work while a worker writes; busy_timeout makes
    concurrent writers wait instead of failing; foreign keys make deletes cascade."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def make_engine(url: Optional[str] = None, *, migrate: bool = True) -> Engine:
    """An engine for `url` (see database_url), with the schema brought up to date."""
    url = database_url(url)
    is_sqlite = make_url(url).get_backend_name() == "sqlite"
    options = {"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}} if is_sqlite else {"pool_pre_ping": True}
    engine = create_engine(url, **options)
    if is_sqlite:
        event.listen(engine, "connect", _configure_sqlite)
    if migrate:
        upgrade_schema(engine)
    return engine


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions whose objects stay readable after commit (callers use `with factory.begin()`)."""
    return sessionmaker(engine, expire_on_commit=False)


def _alembic_config() -> Config:
    """Alembic's settings, in code: no alembic.ini to find or keep in step."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def head_revision() -> str:
    """The newest schema revision this release knows."""
    return ScriptDirectory.from_config(_alembic_config()).get_current_head()


def current_revision(engine: Engine) -> Optional[str]:
    """The revision the database is at, or None for an empty database."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


@contextlib.contextmanager
def _migration_lock(engine: Engine) -> Iterator[None]:
    """Let one process migrate at a time (the dashboard and a worker often start together)."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _MIGRATION_LOCK_KEY})
            try:
                yield
            finally:
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _MIGRATION_LOCK_KEY})
                connection.commit()
    elif engine.dialect.name == "sqlite" and engine.url.database not in (None, "", ":memory:"):
        lock_path = Path(engine.url.database).with_suffix(".migrate.lock")
        with open(lock_path, "w") as lock_file:
            fcntl.flock(lock_file, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock_file, fcntl.LOCK_UN)
    else:
        yield


def upgrade_schema(engine: Engine, revision: str = "head") -> None:
    """Create or migrate the schema; refuse a database newer than this code."""
    head = head_revision()
    if revision == "head" and current_revision(engine) == head:
        return
    with _migration_lock(engine):
        found = current_revision(engine)
        known = {script.revision for script in ScriptDirectory.from_config(_alembic_config()).walk_revisions()}
        if found is not None and found not in known:
            raise SchemaTooNewError(
                f"the database at {masked_url(str(engine.url))} has schema revision {found}, "
                f"which this Unroll does not know (newest here: {head}); upgrade Unroll "
                "(pip install -r requirements.txt) before opening it"
            )
        with engine.begin() as connection:
            config = _alembic_config()
            config.attributes["connection"] = connection
            command.upgrade(config, revision)


def downgrade_schema(engine: Engine, revision: str) -> None:
    """Step the schema back (used by the migration tests and by people rolling back)."""
    with _migration_lock(engine), engine.begin() as connection:
        config = _alembic_config()
        config.attributes["connection"] = connection
        command.downgrade(config, revision)
