"""Revision 0003 on a real SQLite file: the runs table is rebuilt with AUTOINCREMENT, and
nothing of an existing store is lost on the way (the rebuild drops the old table, which
would cascade to every point if foreign keys stayed on). Revision 0004 (annotations) on SQLite
and PostgreSQL: a store of release 0003 keeps every run, id and point, and its runs can be
tagged at once."""

import re
import uuid

import pytest
from sqlalchemy import create_engine, text

from db import queue
from db.engine import current_revision, downgrade_schema, head_revision, make_engine, session_factory, upgrade_schema
from db.models import Run


def _store_of_release_0002(url: str) -> None:
    engine = make_engine(url, migrate=False)
    upgrade_schema(engine, "0002")
    with engine.begin() as connection:
        for run_id in (1, 2, 5):
            connection.execute(
                text(
                    "INSERT INTO runs (id, name, status, config, created_at, attempts, cancel_requested) "
                    f"VALUES ({run_id}, 'run {run_id}', 'succeeded', '{{\"name\": \"r\", \"max_steps\": 2}}', "
                    "'2026-01-01 00:00:00', 1, 0)"
                )
            )
            connection.execute(
                text(
                    "INSERT INTO metric_points (run_id, name, step, seconds, value, wall) "
                    f"VALUES ({run_id}, 'loss', 1, 0.0, 2.3, NULL), ({run_id}, 'loss', 2, 0.1, 2.1, 5.0)"
                )
            )
    engine.dispose()


def test_revision_0003_keeps_every_run_id_and_point_and_never_reuses_an_id(sqlite_url):
    _store_of_release_0002(sqlite_url)
    engine = make_engine(sqlite_url)
    factory = session_factory(engine)
    assert current_revision(engine) == head_revision()
    with factory() as session:
        assert [run.name for run in session.query(Run).order_by(Run.id)] == ["run 1", "run 2", "run 5"]
        assert all(len(queue.curve_arrays(session, run_id)["loss"]) == 2 for run_id in (1, 2, 5))
        assert session.get(Run, 5).change_count == 0
    with factory.begin() as session:
        queue.delete_run(session, 5)
        new = queue.enqueue(session, {"name": "after the delete", "max_steps": 1})
    assert new == 6
    with engine.connect() as connection:  # pooled connections have foreign keys on again
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_store_url(request, sqlite_url):
    """An empty database on each engine (on PostgreSQL a schema of its own, so it can start old)."""
    if request.param == "sqlite":
        yield sqlite_url
        return
    shared = request.getfixturevalue("pg_schema_url")
    schema = f"unroll_migration_{uuid.uuid4().hex[:10]}"
    admin = create_engine(shared)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    yield re.sub(r"search_path%3D\w+", f"search_path%3D{schema}", shared)
    with admin.begin() as connection:
        connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


def _store_of_release_0003(url: str) -> list[int]:
    """Three runs as release 0003 wrote them (a rerun link, a log tail, a change count), with points."""
    engine = make_engine(url, migrate=False)
    upgrade_schema(engine, "0003")
    ids = []
    with engine.begin() as connection:
        for index in range(3):
            run_id = connection.execute(
                text(
                    "INSERT INTO runs (name, status, config, created_at, attempts, cancel_requested, change_count, "
                    "rerun_of, log_tail) VALUES (:name, 'succeeded', :config, '2026-01-01 00:00:00', 1, :no, :changes, "
                    ":rerun_of, :log) RETURNING id"
                ),
                {
                    "name": f"run {index}",
                    "config": '{"name": "r", "max_steps": 2}',
                    "no": False,
                    "changes": 4,
                    "rerun_of": ids[0] if ids else None,
                    "log": "last line",
                },
            ).scalar_one()
            connection.execute(
                text(
                    "INSERT INTO metric_points (run_id, name, step, seconds, value, wall) "
                    "VALUES (:run, 'loss', 1, 0.0, 2.3, NULL), (:run, 'loss', 2, 0.1, 2.1, 5.0)"
                ),
                {"run": run_id},
            )
            ids.append(run_id)
    engine.dispose()
    return ids


def test_revision_0004_keeps_a_0003_store_and_its_runs_can_be_annotated_at_once(empty_store_url):
    ids = _store_of_release_0003(empty_store_url)
    engine = make_engine(empty_store_url)  # a newer release opens the store
    factory = session_factory(engine)
    assert current_revision(engine) == head_revision()
    with factory() as session:
        runs = session.query(Run).order_by(Run.id).all()
        assert [(run.id, run.name, run.change_count, run.log_tail) for run in runs] == [
            (run_id, f"run {index}", 4, "last line") for index, run_id in enumerate(ids)
        ]
        assert [run.rerun_of for run in runs] == [None, ids[0], ids[0]]
        assert [(run.tag_list, run.notes, run.starred) for run in runs] == [([], None, False)] * 3
        assert all(len(queue.curve_arrays(session, run_id)["loss"]) == 2 for run_id in ids)
    with factory.begin() as session:
        queue.annotate(session, ids[1], tags=["old", "kept"], notes="from 0003", starred=True)
        new = queue.enqueue(session, {"name": "after the upgrade", "max_steps": 1})
    assert new > max(ids)
    with factory() as session:
        annotated = session.get(Run, ids[1])
        assert (annotated.tag_list, annotated.notes, annotated.starred, annotated.change_count) == (
            ["old", "kept"],
            "from 0003",
            True,
            5,
        )
    downgrade_schema(engine, "0003")  # and back, keeping every run
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM runs")).scalar() == 4
        assert connection.execute(text("SELECT count(*) FROM metric_points")).scalar() == 6
    engine.dispose()
