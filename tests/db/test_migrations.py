"""Revision 0003 on a real SQLite file: the runs table is rebuilt with AUTOINCREMENT, and
nothing of an existing store is lost on the way (the rebuild drops the old table, which
would cascade to every point if foreign keys stayed on)."""

from sqlalchemy import text

from db import queue
from db.engine import current_revision, make_engine, session_factory, upgrade_schema
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
    assert current_revision(engine) == "0003"
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
