"""The pages' read models, on SQLite and PostgreSQL."""

from datetime import timedelta

import pytest

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


def test_runs_are_found_by_config_fields_tags_star_text_and_source_and_sorted_by_any_column(factory):
    with factory.begin() as session:
        small, large, series = queue.enqueue_many(
            session,
            [
                {"name": "small gru", "max_steps": 10, "cell": "gru", "hidden_units": 32, "bidirectional": True},
                {"name": "large_lstm", "max_steps": 10, "hidden_units": 256, "learning_rate": 0.001, "clip_norm": 1.0},
                {"name": "series", "task": "series", "epochs": 1, "learning_rate": 0.005, "hidden_units": 64},
            ],
            group="sweep, 1",
        )
        queue.annotate(session, small, tags=["baseline", "e1"], notes="The Reference run", starred=True)
        queue.annotate(session, large, tags=["base_line"])  # "_" is no wildcard: only this run has it
        queue.claim(session, large, "w")
        queue.append_metrics(session, large, "w", [queue.Point("loss", 5, 0.5, 0.25)])
        queue.finish(session, large, "w", {"test_accuracy": 0.9, "median_step_ms": 3.0, "data_source": "npz:/d/m.npz"})
    Range = queries.Range
    with factory() as session:

        def found(filters, sort="id", descending=True):
            return [row["id"] for row in queries.run_page(session, filters, sort=sort, descending=descending).rows]

        assert found({"hidden_units": [32, 256]}) == [large, small]
        assert found({"hidden_units": [Range(100, 1000)]}) == [large]
        assert found({"learning_rate": [0.001, 0.005]}) == [series, large]
        assert found({"learning_rate": [Range(0.004, 0.02)]}) == [series, small]
        assert found({"clip_norm": [None]}) == [series, small]  # "not set"
        assert found({"bidirectional": [True]}) == [small]
        assert found({"task": ["series"], "cell": ["lstm"]}) == [series]
        assert found({"tag": ["baseline"]}) == [small]
        assert found({"tag": ["base_line", "e1"]}) == [large, small]  # any of the tags
        assert found({"starred": True}) == [small]
        assert found({"q": "reference"}) == [small]  # notes, any case
        assert found({"q": "LSTM sweep"}) == [large]  # every word, in the name or the group
        assert found({"q": f"#{series}"}) == [series]
        assert found({"q": "100%"}) == []  # LIKE's wildcards are escaped
        assert found({"source": "M.NPZ"}) == [large]
        assert found({"group": ["sweep, 1"], "status": ["queued"]}) == [series, small]
        assert found({}, sort="test_accuracy") == [large, series, small]  # runs without a value come last
        assert found({}, sort="test_accuracy", descending=False) == [large, series, small]
        assert found({}, sort="hidden_units", descending=False) == [small, series, large]
        assert found({}, sort="name", descending=False) == [large, series, small]
        assert found({}, sort="starred") == [small, series, large]
        assert found({}, sort="progress") == [large, small, series]  # series has no max_steps
        assert found({}, sort="elapsed") == [large, series, small]
        assert found({}, sort="id", descending=False) == [small, large, series]
        assert queries.filter_options(session)["tag"] == ["base_line", "baseline", "e1"]
        [row] = queries.run_page(session, {"tag": ["baseline"]}).rows
    assert (row["name"], row["tags"], row["starred"]) == ("small gru", ["baseline", "e1"], True)
    with factory() as session, pytest.raises(ValueError, match="cannot filter on 'colour'"):
        queries.run_page(session, {"colour": ["red"]})
    with factory() as session, pytest.raises(ValueError, match="cannot sort by 'colour'"):
        queries.run_page(session, {}, sort="colour")
