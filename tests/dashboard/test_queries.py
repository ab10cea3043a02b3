"""The pages' read models, on SQLite and PostgreSQL."""

from datetime import timedelta

from dashboard import queries
from db import queue


def test_rows_progress_filters_and_health(factory):
    with factory.begin() as session:
        done, running, waiting = queue.enqueue_many(
            session,
            [
                {"name": "done", "max_steps": 10, "cell": "gru"},
                {"name": "running", "max_steps": 40},
                {"name": "waiting", "epochs": 1},
            ],
            group="g",
        )
        queue.claim_next(session, "w")
        queue.append_metrics(session, done, "w", [queue.Point("loss", 10, 0.5, 0.25)])
        queue.finish(session, done, "w", {"test_accuracy": 0.91234})
        queue.claim_next(session, "w")
        queue.append_metrics(session, running, "w", [queue.Point("loss", 10, 0.5, 0.5)])
    with factory() as session:
        rows = queries.run_page(session, {}).rows
        health = queries.worker_health(session, timedelta(seconds=15))
        running_or_queued = queries.run_page(session, {"status": ["running", "queued"], "cell": []})
        gru = queries.run_page(session, {"cell": ["gru"]})
        page_two = queries.run_page(session, {"group": ["g"]}, offset=2, limit=2)
        labels = queries.run_labels(session, limit=1, include=[done])
    assert [row["id"] for row in rows] == [waiting, running, done]
    assert [row["progress"] for row in rows] == [None, 0.25, 1.0]
    assert rows[2]["test accuracy"] == 0.91234
    assert rows[2]["test MSE"] is None
    assert rows[1]["loss"] == 0.5
    assert [row["name"] for row in running_or_queued.rows] == ["waiting", "running"]
    assert running_or_queued.total == 2
    assert [row["name"] for row in gru.rows] == ["done"]  # a config field, filtered in SQL on both databases
    assert ([row["name"] for row in page_two.rows], page_two.total, page_two.offset) == (["done"], 3, 2)
    assert labels == [(waiting, f"#{waiting} waiting"), (done, f"#{done} done")]
    assert health["stranded"]
    assert health["queued"] == 1
    assert health["silent"] == []


def test_run_infos_and_points(factory):
    with factory.begin() as session:
        run_id = queue.enqueue(session, {"name": "r", "max_steps": 3})
        queue.claim_next(session, "w")
        queue.append_metrics(
            session, run_id, "w", [queue.Point("loss", step, step * 0.1, 1.0 / step) for step in (1, 2, 3)]
        )
    with factory() as session:
        [run] = queries.run_infos(session, [run_id, 999])
        points = queries.points_frame(session, run.id, run.started_at)
    assert (run.label, run.status, run.progress_step) == (f"#{run_id} r", "running", 3)
    assert list(points["step"]) == [1, 2, 3]
    assert list(points.columns) == queries.POINT_COLUMNS
    assert abs(points["wall"][2] - run.started_at.timestamp() - 0.3) < 1e-6
    assert queries.concat_points([]).empty


def test_the_wall_clock_is_when_each_point_was_recorded(factory):
    """The training clock skips graph building and evaluations; the wall axis must not."""
    with factory.begin() as session:
        run_id = queue.enqueue(session, {"name": "r", "max_steps": 3})
        queue.claim_next(session, "w")
        queue.append_metrics(
            session,
            run_id,
            "w",
            [queue.Point("loss", 1, 0.0, 1.0, wall=1_000_030.0), queue.Point("loss", 2, 0.1, 0.9, wall=1_000_045.5)],
        )
    with factory() as session:
        [run] = queries.run_infos(session, [run_id])
        points = queries.points_frame(session, run.id, run.started_at)
    assert list(points["wall"]) == [1_000_030.0, 1_000_045.5]
