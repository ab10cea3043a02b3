"""The engine: SQLite settings, the database URL, and schema versions."""

import multiprocessing

import numpy as np
import pytest
from sqlalchemy import func, inspect, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from db import queue
from db.engine import (
    DEFAULT_DB_URL,
    DatabaseUnavailable,
    SchemaTooNewError,
    connect_or_explain,
    current_revision,
    describe_database_error,
    downgrade_schema,
    head_revision,
    make_engine,
    masked_url,
    resolve_db_url,
    session_factory,
    upgrade_schema,
)
from db.models import Run


def test_sqlite_connections_get_wal_busy_timeout_and_foreign_keys(sqlite_url):
    engine = make_engine(sqlite_url)
    with engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA busy_timeout")).scalar() >= 5000
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1


def test_the_url_comes_from_the_argument_then_the_environment_then_the_default(monkeypatch):
    monkeypatch.delenv("UNROLL_DB_URL", raising=False)
    assert resolve_db_url() == DEFAULT_DB_URL == "sqlite:///unroll.db"
    monkeypatch.setenv("UNROLL_DB_URL", "sqlite:///elsewhere.db")
    assert resolve_db_url() == "sqlite:///elsewhere.db"
    assert resolve_db_url("sqlite:///explicit.db") == "sqlite:///explicit.db"


def test_passwords_are_masked():
    shown = masked_url("postgresql+psycopg://unroll:s3cret@db.example:5432/runs")
    assert "s3cret" not in shown
    assert "***" in shown


def test_the_schema_is_created_on_first_use_at_the_newest_revision(db_url):
    engine = make_engine(db_url)
    assert current_revision(engine) == head_revision()
    assert {"runs", "metric_points", "workers"} <= set(inspect(engine).get_table_names())


def test_reopening_an_existing_database_keeps_its_runs(db_url):
    factory = session_factory(make_engine(db_url))
    with factory.begin() as session:
        queue.enqueue(session, {"name": "kept", "max_steps": 1})
    reopened = session_factory(make_engine(db_url))
    with reopened() as session:
        assert session.scalars(select(Run.name)).all() == ["kept"]


def test_migrations_have_a_real_downgrade_and_upgrade_again(sqlite_url):
    engine = make_engine(sqlite_url)
    downgrade_schema(engine, "base")
    assert current_revision(engine) is None
    assert "runs" not in inspect(engine).get_table_names()
    upgrade_schema(engine)
    assert current_revision(engine) == head_revision()


def test_a_database_from_a_newer_release_is_refused_with_advice(sqlite_url):
    engine = make_engine(sqlite_url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = 'ffff_future'"))
    with pytest.raises(SchemaTooNewError, match="upgrade Unroll"):
        make_engine(sqlite_url)


def test_processes_opening_a_new_database_at_once_migrate_it_once(sqlite_url):
    context = multiprocessing.get_context("spawn")  # the target must be importable: make_engine itself
    processes = [context.Process(target=make_engine, args=(sqlite_url,)) for _ in range(4)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(180)  # generous: on a loaded 2-core machine four interpreters take long to start
    assert [process.exitcode for process in processes] == [0] * 4
    with make_engine(sqlite_url).connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1
        assert connection.execute(select(func.count()).select_from(Run)).scalar() == 0


def test_a_database_of_the_first_release_is_migrated_without_losing_runs_or_points(sqlite_url):
    engine = make_engine(sqlite_url, migrate=False)
    upgrade_schema(engine, "0001")
    assert current_revision(engine) == "0001"
    with engine.begin() as connection:  # what release 0001 wrote, in its own columns
        connection.execute(
            text(
                "INSERT INTO runs (id, name, status, config, created_at, attempts, cancel_requested) "
                "VALUES (1, 'old run', 'succeeded', '{\"name\": \"old run\", \"max_steps\": 2}', "
                "'2026-01-01 00:00:00', 1, 0)"
            )
        )
        connection.execute(
            text(
                "INSERT INTO metric_points (run_id, name, step, seconds, value) "
                "VALUES (1, 'loss', 1, 0.0, 2.3), (1, 'loss', 2, 0.1, 2.1)"
            )
        )
    factory = session_factory(make_engine(sqlite_url))  # a newer release opens the file
    assert current_revision(factory.kw["bind"]) == head_revision() != "0001"
    with factory() as session:
        assert session.get(Run, 1).name == "old run"
        loss = queue.curve_arrays(session, 1)["loss"]
        assert loss[:, :3].tolist() == [[1, 0.0, 2.3], [2, 0.1, 2.1]]
        assert np.isnan(loss[:, 3]).all()  # no wall time was recorded before revision 0002


# --- a database that cannot be opened: one sentence, not a traceback ------------------------

PASSWORD = "s3cret"


def _bad_url(case: str, tmp_path, request) -> str:
    """The URL of each kind of unusable database; PostgreSQL ones carry a password to be masked."""
    if case == "corrupt file":
        (tmp_path / "corrupt.db").write_bytes(b"this is not SQLite " * 300)
        return f"sqlite:///{tmp_path / 'corrupt.db'}"
    if case == "a folder":
        (tmp_path / "folder.db").mkdir()
        return f"sqlite:///{tmp_path / 'folder.db'}"
    if case == "missing parent folder":
        return f"sqlite:///{tmp_path / 'missing' / 'unroll.db'}"
    if case in ("closed port", "unknown host"):
        return {
            "closed port": f"postgresql+psycopg://bob:{PASSWORD}@127.0.0.1:1/test",
            "unknown host": f"postgresql+psycopg://bob:{PASSWORD}@unroll-db.invalid:5432/test",
        }[case]
    server = make_url(request.getfixturevalue("pg_schema_url")).set(password=PASSWORD, query={})  # skips if down
    if case == "unknown database":
        return server.set(database="unroll_no_such_db").render_as_string(hide_password=False)
    return server.set(username="unroll_no_such_role").render_as_string(hide_password=False)


@pytest.mark.parametrize(
    "case, problem",
    [
        ("corrupt file", "the file is not a SQLite database"),
        ("a folder", "the path is a folder, not a SQLite file"),
        ("missing parent folder", "/missing does not exist"),
        ("closed port", "nothing accepts connections at that host and port"),
        ("unknown host", 'the host name "unroll-db.invalid" cannot be resolved'),
        ("unknown database", 'the server has no database "unroll_no_such_db"'),
        ("unknown role", 'the server has no role (user) "unroll_no_such_role"'),
    ],
)
def test_a_database_that_cannot_be_opened_is_one_sentence_naming_the_problem_and_the_url(
    case, problem, tmp_path, request
):
    url = _bad_url(case, tmp_path, request)
    with pytest.raises(DatabaseUnavailable) as raised:
        connect_or_explain(url)
    sentence = str(raised.value)
    assert sentence.startswith(f"cannot open the database at {masked_url(url)}: ")
    assert problem in sentence
    assert "\n" not in sentence
    assert PASSWORD not in sentence
    assert raised.value.__cause__ is not None  # the driver's error stays attached, for --verbose


@pytest.mark.parametrize(
    "url, problem",
    [
        ("not a url", "'not a url': it is not a database URL SQLAlchemy can parse"),
        (
            f"postgresql+psycopg://bob:{PASSWORD}@127.0.0.1:port/test",
            "'postgresql+psycopg://bob:***@127.0.0.1:port/test': it is not a database URL",
        ),
        ("foo://x", 'at foo://x: SQLAlchemy knows no database type or driver "foo"'),
        (f"mssql+pymssql://bob:{PASSWORD}@127.0.0.1/test", 'the Python module "pymssql", is not installed'),
    ],
)
def test_a_url_that_cannot_be_used_at_all_is_one_sentence_too(url, problem):
    with pytest.raises(DatabaseUnavailable) as raised:
        connect_or_explain(url)
    sentence = str(raised.value)
    assert problem in sentence
    assert "\n" not in sentence
    assert PASSWORD not in sentence


def test_known_driver_messages_become_plain_words_and_unknown_ones_their_first_line():
    url = f"postgresql+psycopg://bob:{PASSWORD}@db.example:5432/unroll"
    refused = OperationalError(
        None,
        None,
        Exception(
            'connection failed: connection to server at "10.0.0.5", port 5432 failed: '
            'FATAL:  password authentication failed for user "bob"'
        ),
    )
    assert describe_database_error(refused, url) == (
        "cannot open the database at postgresql+psycopg://bob:***@db.example:5432/unroll: "
        'the server refused the password of user "bob"'
    )
    odd = OperationalError(None, None, Exception(f"something new ({PASSWORD})\nmore detail"))
    assert describe_database_error(odd, url).endswith(": something new (***)")


def test_a_new_file_in_an_existing_folder_is_created_and_the_default_relative_url_works(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("UNROLL_DB_URL", raising=False)
    connect_or_explain().dispose()  # sqlite:///unroll.db, relative to the working directory
    connect_or_explain(f"sqlite:///{tmp_path / 'new.db'}").dispose()
    assert (tmp_path / "unroll.db").is_file()
    assert (tmp_path / "new.db").is_file()


def test_a_database_from_a_newer_release_keeps_its_advice_as_the_sentence(sqlite_url):
    engine = make_engine(sqlite_url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = 'ffff_future'"))
    with pytest.raises(DatabaseUnavailable, match="schema revision ffff_future.*upgrade Unroll"):
        connect_or_explain(sqlite_url)
