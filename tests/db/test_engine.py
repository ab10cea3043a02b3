"""The engine: SQLite settings, the database URL, and schema versions."""

import multiprocessing

import numpy as np

import pytest
from sqlalchemy import func, inspect, select, text

from db import queue
from db.engine import (DEFAULT_DB_URL, SchemaTooNewError, current_revision, database_url, downgrade_schema,
                       head_revision, make_engine, masked_url, session_factory, upgrade_schema)
from db.models import Run


def test_sqlite_connections_get_wal_busy_timeout_and_foreign_keys(sqlite_url):
    engine = make_engine(sqlite_url)
    with engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA busy_timeout")).scalar() >= 5000
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1


def test_the_url_comes_from_the_argument_then_the_environment_then_the_default(monkeypatch):
    monkeypatch.delenv("UNROLL_DB_URL", raising=False)
    assert database_url() == DEFAULT_DB_URL == "sqlite:///unroll.db"
    monkeypatch.setenv("UNROLL_DB_URL", "sqlite:///elsewhere.db")
    assert database_url() == "sqlite:///elsewhere.db"
    assert database_url("sqlite:///explicit.db") == "sqlite:///explicit.db"


def test_passwords_are_masked():
    shown = masked_url("postgresql+psycopg://unroll:s3cret@db.example:5432/runs")
    assert "s3cret" not in shown and "***" in shown


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
        process.join(60)
    assert [process.exitcode for process in processes] == [0] * 4
    with make_engine(sqlite_url).connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1
        assert connection.execute(select(func.count()).select_from(Run)).scalar() == 0


def test_a_database_of_the_first_release_is_migrated_without_losing_runs_or_points(sqlite_url):
    engine = make_engine(sqlite_url, migrate=False)
    upgrade_schema(engine, "0001")
    assert current_revision(engine) == "0001"
    with engine.begin() as connection:  # what release 0001 wrote, in its own columns
        connection.execute(text(
            "INSERT INTO runs (id, name, status, config, created_at, attempts, cancel_requested) "
            "VALUES (1, 'old run', 'succeeded', '{\"name\": \"old run\", \"max_steps\": 2}', "
            "'2026-01-01 00:00:00', 1, 0)"))
        connection.execute(text("INSERT INTO metric_points (run_id, name, step, seconds, value) "
                                "VALUES (1, 'loss', 1, 0.0, 2.3), (1, 'loss', 2, 0.1, 2.1)"))
    factory = session_factory(make_engine(sqlite_url))  # a newer release opens the file
    assert current_revision(factory.kw["bind"]) == head_revision() != "0001"
    with factory() as session:
        assert session.get(Run, 1).name == "old run"
        loss = queue.curve_arrays(session, 1)["loss"]
        assert loss[:, :3].tolist() == [[1, 0.0, 2.3], [2, 0.1, 2.1]]
        assert np.isnan(loss[:, 3]).all()  # no wall time was recorded before revision 0002
