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
import re
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

DEFAULT_DB_URL = "sqlite:///unroll.db"
SQLITE_BUSY_TIMEOUT_MS = 30_000
MIGRATIONS_DIR = Path(__file__).with_name("migrations")
# Any fixed number: PostgreSQL advisory lock that serialises concurrent first-time migrations.
_MIGRATION_LOCK_KEY = 7_301_946


class SchemaTooNewError(RuntimeError):
    """The database was written by a newer Unroll than this one."""


class DatabaseUnavailable(RuntimeError):
    """The database cannot be opened; the message is one line naming why and the (masked) URL."""


# Exit status of every command when its database cannot be opened (like a refused option).
DATABASE_UNAVAILABLE_EXIT = 2


def resolve_db_url(url: str | None = None) -> str:
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


def make_engine(url: str | None = None, *, migrate: bool = True) -> Engine:
    """An engine for `url` (see resolve_db_url), with the schema brought up to date."""
    url = resolve_db_url(url)
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
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert head is not None, "db/migrations has no revisions"
    return head


def current_revision(engine: Engine) -> str | None:
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
            _without_foreign_keys(connection)
            config = _alembic_config()
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
        _reset_connections(engine)


def downgrade_schema(engine: Engine, revision: str) -> None:
    """Step the schema back (used by the migration tests and by people rolling back)."""
    with _migration_lock(engine), engine.begin() as connection:
        _without_foreign_keys(connection)
        config = _alembic_config()
        config.attributes["connection"] = connection
        command.downgrade(config, revision)
    _reset_connections(engine)


def _without_foreign_keys(connection) -> None:
    """SQLite rebuilds a table to alter it (copy, drop, rename): with foreign keys on, the drop
    would cascade to every metric point. The pragma only takes effect before the transaction's
    first write, so it is the first statement on the migrating connection."""
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")


def _reset_connections(engine: Engine) -> None:
    """Drop pooled connections after a migration: new ones get foreign keys back on connect."""
    if engine.dialect.name == "sqlite":
        engine.dispose()


# --- a sentence, not a traceback ----------------------------------------------------------

# What the drivers say (first line of the message), and the reason shown for it.
_DRIVER_REASONS = [
    (r"file is not a database", "the file is not a SQLite database (corrupt, or another kind of file)"),
    (r"attempt to write a readonly database", "the file is read-only for this user"),
    (r"database is locked", "the file stayed locked by another process"),
    (r'role "([^"]*)" does not exist', 'the server has no role (user) "{0}"'),
    (r'database "([^"]*)" does not exist', 'the server has no database "{0}" (create it, e.g. createdb {0})'),
    (r'password authentication failed for user "([^"]*)"', 'the server refused the password of user "{0}"'),
    (r"no password supplied", "the server asks for a password and the URL gives none"),
    (r"Connection refused", "nothing accepts connections at that host and port (is the server running?)"),
    (
        r"failed to resolve host '([^']*)'|could not translate host name \"([^\"]*)\"",
        'the host name "{0}" cannot be resolved',
    ),
    (r'invalid port number: "([^"]*)"', 'the port "{0}" is not a valid port number'),
    (r"timeout expired|timed out", "the server did not answer in time"),
]


def _parsed(url: str):
    """The URL parsed, or None when SQLAlchemy cannot parse it."""
    try:
        return make_url(url)
    except Exception:
        return None


def _shown_url(url: str) -> str:
    """The URL for a message: masked; if it cannot even be parsed, quoted and masked by hand."""
    parsed = _parsed(url)
    if parsed is not None:
        return parsed.render_as_string(hide_password=True)
    return "'" + re.sub(r"(://[^:/@]*:).*@", r"\1***@", url) + "'"


def _password(url: str) -> str | None:
    parsed = _parsed(url)
    if parsed is not None:
        return parsed.password
    found = re.search(r"://[^:/@]*:(.*)@", url)
    return found.group(1) if found else None


def _sqlite_open_reason(url: str) -> str:
    """Why SQLite could not open its file: a folder, a missing parent folder, or permissions."""
    path = Path(make_url(url).database or "")
    if path.is_dir():
        return "the path is a folder, not a SQLite file"
    if not path.parent.is_dir():
        return f"the folder {path.parent} does not exist"
    if not os.access(path.parent, os.W_OK) or (path.exists() and not os.access(path, os.R_OK | os.W_OK)):
        return "permission denied (this user cannot read and write the file and its folder)"
    return "SQLite cannot open the file"


def _driver_reason(error: BaseException, url: str) -> str:
    """The reason from the driver's message: a known one in plain words, else its first line."""
    message = str(error.orig if isinstance(error, DBAPIError) and error.orig is not None else error)
    message = (message.strip().splitlines() or [type(error).__name__])[0].strip()
    if message == "unable to open database file":
        return _sqlite_open_reason(url)
    for pattern, template in _DRIVER_REASONS:
        found = re.search(pattern, message)
        if found:
            return template.format(*(group for group in found.groups() if group is not None))
    return message.removeprefix("connection failed: ")


def describe_database_error(error: BaseException, url: str) -> str:
    """One line saying why the database at `url` cannot be used, with its password masked."""
    if isinstance(error, (DatabaseUnavailable, SchemaTooNewError)):
        return " ".join(str(error).split())  # already a sentence naming the masked URL
    if isinstance(error, NoSuchModuleError):  # (a kind of ArgumentError: test it first)
        reason = (
            f'SQLAlchemy knows no database type or driver "{make_url(url).drivername}" '
            "(use sqlite:///FILE or postgresql+psycopg://...)"
        )
    elif isinstance(error, (ArgumentError, ValueError)) and _parsed(url) is None:
        reason = (
            "it is not a database URL SQLAlchemy can parse "
            "(expected e.g. sqlite:///unroll.db or postgresql+psycopg://user:password@host:5432/name)"
        )
    elif isinstance(error, ImportError):
        reason = f'its driver, the Python module "{error.name}", is not installed'
    else:
        reason = _driver_reason(error, url)
    password = _password(url)
    if password:  # in case a driver echoed it; the URL itself is masked already
        reason = re.sub(rf"(?<![A-Za-z0-9]){re.escape(password)}(?![A-Za-z0-9])", "***", reason)
    return " ".join(f"cannot open the database at {_shown_url(url)}: {reason}".split())


# What opening a database can raise: SQLAlchemy and driver errors, an unparsable URL, a
# missing driver module, the file system (SQLite), and a schema from a newer release.
_OPENING_ERRORS = (SQLAlchemyError, SchemaTooNewError, OSError, ValueError, ImportError)


def connect_or_explain(url: str | None = None, *, migrate: bool = True) -> Engine:
    """make_engine, but connected now (and migrated unless migrate=False), and any failure
    raised as DatabaseUnavailable with one sentence (the original error as its cause)."""
    url = resolve_db_url(url)
    try:
        engine = make_engine(url, migrate=migrate)
        if not migrate:
            with engine.connect():
                pass
    except _OPENING_ERRORS as error:
        raise DatabaseUnavailable(describe_database_error(error, url)) from error
    return engine


def report_database_error(error: DatabaseUnavailable, prog: str, verbose: bool = False) -> int:
    """For a command line: the traceback (verbose only), then the sentence; the exit status."""
    if verbose:
        traceback.print_exception(error, file=sys.stderr)
    print(f"{prog}: error: {error}", file=sys.stderr)
    return DATABASE_UNAVAILABLE_EXIT
