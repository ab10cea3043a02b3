"""The training loop: stop criteria, the clock, divergence, reproducibility, tasks and heads."""

import math
import time

import numpy as np
import pytest

from db.presets import PRESETS
from db.run_config import validate_config
from db.summary import SCHEMA_VERSION, RunSummary
from rnncore import data, train
from rnncore import run as cli

BASE = {"name": "t", "task": "mnist", "cell": "lstm", "hidden_units": 16, "batch_size": 64, "seed": 1}
# The keys every summary has, in the order they are stored; a finished run adds its test figure (and series plots).
SUMMARY_KEYS = [
    "schema_version",
    "steps",
    "train_seconds",
    "trace_seconds",
    "median_step_ms",
    "target_step",
    "target_seconds",
    "stopped_by",
    "parameters",
    "peak_memory_mb",
    "memory_growth_mb",
    "tensorflow",
    "device",
    "cpu",
    "cpu_cores",
    "data_source",
    "train_examples",
    "test_examples",
]


def run(record_into=None, dataset=None, should_stop=lambda: None, **changes):
    """Train a config; return (summary, points) where points[name] = [(step, seconds, value)]."""
    points = {} if record_into is None else record_into

    def record(step, seconds, values):
        for name, value in values.items():
            points.setdefault(name, []).append((step, seconds, value))

    summary = train.train(validate_config({**BASE, **changes}), record, should_stop, dataset=dataset)
    return summary, points


@pytest.fixture(scope="module")
def mnist():
    return data.load_mnist()


def test_a_short_run_learns_and_reports_everything(mnist):
    summary, points = run(dataset=mnist, max_steps=80)
    losses = [value for _, _, value in points["loss"]]
    assert len(losses) == 80
    assert np.mean(losses[-10:]) < np.mean(losses[:10]) - 0.5
    assert summary["test_accuracy"] > 0.4  # chance is 0.1
    assert summary["steps"] == 80
    assert summary["stopped_by"] == "max_steps"
    for key in ("trace_seconds", "train_seconds", "median_step_ms", "peak_memory_mb", "parameters"):
        assert summary[key] > 0, key
    assert summary["data_source"] == mnist.source
    assert summary["train_examples"] == len(mnist.x_train)
    assert summary["tensorflow"]
    assert summary["device"]
    assert summary["cpu"]
    assert summary["cpu_cores"] >= 1
    assert list(summary) == [*SUMMARY_KEYS, "test_accuracy"]
    assert summary["schema_version"] == SCHEMA_VERSION
    assert summary["target_step"] is None
    assert summary["target_seconds"] is None
    assert RunSummary.from_stored(summary).to_stored() == summary  # what is stored reads back as it was


def test_the_stop_reason_is_a_pure_function_of_the_step_and_its_score():
    config = validate_config({**BASE, "target_accuracy": 0.9, "max_steps": 10, "epochs": 1})
    limit = train.step_limit(config, train_size=640)
    assert limit == 10
    assert train.stop_reason(config, steps=3, score=0.95, limit=limit) == "target_accuracy"  # checked first
    assert train.stop_reason(config, steps=10, score=0.95, limit=limit) == "target_accuracy"
    assert train.stop_reason(config, steps=10, score=0.5, limit=limit) == "max_steps"
    assert train.stop_reason(config, steps=9, score=0.5, limit=limit) is None
    epochs = validate_config({**BASE, "epochs": 1})
    assert train.stop_reason(epochs, steps=10, score=1.0, limit=train.step_limit(epochs, 640)) == "epochs"
    series = validate_config({**BASE, "task": "series", "max_steps": 5})
    assert train.stop_reason(series, steps=1, score=0.0, limit=5) is None  # a series score is an MSE, no target
    progress = train.Progress(steps=4, train_seconds=1.5)
    progress.stop("max_steps")
    assert (progress.stopped_by, progress.target_step, progress.target_seconds) == ("max_steps", None, None)
    progress.stop("target_accuracy")
    assert (progress.stopped_by, progress.target_step, progress.target_seconds) == ("target_accuracy", 4, 1.5)


def test_the_command_line_prints_fields_of_the_summary_schema():
    assert set(cli.SUMMARY_KEYS) <= set(RunSummary.model_fields)


def test_the_clock_starts_at_the_end_of_the_first_step(mnist):
    summary, points = run(dataset=mnist, max_steps=15)
    seconds = [s for _, s, _ in points["loss"]]
    assert seconds[0] == 0.0
    assert all(b > a for a, b in zip(seconds, seconds[1:]))
    assert summary["train_seconds"] == seconds[-1]
    assert summary["trace_seconds"] > summary["median_step_ms"] / 1000  # building the graph is the slow part


def test_the_same_seed_gives_the_same_curve_and_another_seed_another(mnist):
    _, first = run(dataset=mnist, max_steps=12)
    _, again = run(dataset=mnist, max_steps=12)
    _, other = run(dataset=mnist, max_steps=12, seed=2)
    values = lambda points: [v for _, _, v in points["loss"]]
    assert values(first) == values(again)
    assert values(first) != values(other)


def test_epochs_count_whole_batches_of_the_training_set(mnist):
    summary, _ = run(dataset=mnist, train_subset=640, epochs=2)
    assert summary["steps"] == 2 * (640 // 64)
    assert summary["stopped_by"] == "epochs"
    assert summary["train_examples"] == 640


def test_the_first_batch_reaching_the_target_accuracy_stops_the_run(mnist):
    summary, points = run(dataset=mnist, target_accuracy=0.5, max_steps=1000)
    first_hit = next(step for step, _, value in points["accuracy"] if value >= 0.5)
    assert summary["stopped_by"] == "target_accuracy"
    assert summary["target_step"] == summary["steps"] == first_hit
    assert summary["target_seconds"] == points["accuracy"][first_hit - 1][1]


def test_whichever_step_limit_comes_first_wins(mnist):
    summary, _ = run(dataset=mnist, train_subset=640, epochs=5, max_steps=7)
    assert summary["steps"] == 7
    assert summary["stopped_by"] == "max_steps"


def test_a_non_finite_loss_fails_as_diverged_and_keeps_the_curve(mnist):
    poisoned = data.Dataset(
        np.full_like(mnist.x_train[:256], np.nan),
        mnist.y_train[:256],
        mnist.x_test[:64],
        mnist.y_test[:64],
        source="poisoned",
    )
    points = {}
    with pytest.raises(train.Diverged, match="diverged at step 1") as diverged:
        run(points, dataset=poisoned, max_steps=50)
    assert diverged.value.step == 1
    assert diverged.value.summary["stopped_by"] == "diverged"
    assert list(diverged.value.summary) == SUMMARY_KEYS  # no test figure: the run did not finish
    assert len(points["loss"]) == 1
    assert math.isnan(points["loss"][0][2])


def test_a_stop_request_interrupts_with_the_summary_so_far(mnist):
    steps = []
    stop_after_three = lambda: "cancelled" if len(steps) >= 3 else None
    with pytest.raises(train.Interrupted) as interrupted:
        train.train(
            validate_config({**BASE, "max_steps": 100}), lambda s, *_: steps.append(s), stop_after_three, dataset=mnist
        )
    assert interrupted.value.reason == "cancelled"
    assert interrupted.value.summary["steps"] == 3
    assert interrupted.value.summary["stopped_by"] == "cancelled"
    assert list(interrupted.value.summary) == SUMMARY_KEYS


def test_eval_every_records_the_test_figure_without_counting_its_time(mnist, monkeypatch):
    evaluate = train.Trainer.evaluate

    def slow_evaluate(self):
        time.sleep(0.5)
        return evaluate(self)

    monkeypatch.setattr(train.Trainer, "evaluate", slow_evaluate)
    summary, points = run(dataset=mnist, max_steps=20, eval_every=10)
    assert [step for step, _, _ in points["test_accuracy"]] == [10, 20]
    assert points["test_accuracy"][-1][2] == pytest.approx(summary["test_accuracy"])
    seconds = [s for _, s, _ in points["loss"]]
    assert seconds[10] - seconds[9] < 0.25  # the half-second evaluation after step 10 is not training time


def test_memory_is_reported_as_the_peak_and_its_growth_during_the_run(mnist):
    summary, _ = run(dataset=mnist, max_steps=3)
    assert summary["peak_memory_mb"] > summary["memory_growth_mb"] >= 0


def test_the_last3_head_and_its_parameter_count(mnist):
    summary, _ = run(dataset=mnist, max_steps=3, head="last3")
    lstm = 4 * (16 * (28 + 16) + 16)
    assert summary["parameters"] == lstm + (3 * 16 * 10 + 10)


def test_keras_layers_train_as_a_peer(mnist):
    summary, points = run(dataset=mnist, max_steps=30, implementation="keras", mode="dynamic")
    assert summary["steps"] == 30
    assert summary["test_accuracy"] > 0.2


def test_a_series_run_stores_the_test_instance_and_rollouts():
    summary, points = run(
        task="series",
        cell="rnn",
        activation="relu",
        hidden_units=32,
        batch_size=50,
        learning_rate=0.005,
        mode="dynamic",
        max_steps=150,
    )
    losses = [v for _, _, v in points["loss"]]
    assert "accuracy" not in points
    assert np.mean(losses[-10:]) < np.mean(losses[:10]) / 2
    assert math.isfinite(summary["test_mse"])
    assert list(summary) == [*SUMMARY_KEYS, "test_mse", "series"]
    assert RunSummary.from_stored(summary).to_stored() == summary
    plots = summary["series"]
    assert all(len(plots["instance"][key]) == 20 for key in ("inputs", "targets", "predictions"))
    assert len(plots["rollouts"]["zeros"]) == len(plots["rollouts"]["real"]) == 20 + train.ROLLOUT_STEPS
    assert plots["rollouts"]["zeros"][:20] == [0.0] * 20


def test_variable_length_series_train_in_dynamic_mode():
    summary, points = run(
        task="series", cell="gru", batch_size=50, learning_rate=0.01, mode="dynamic", variable_length=True, max_steps=20
    )
    assert summary["data_source"].endswith("variable lengths")
    assert math.isfinite(summary["test_mse"])


def test_a_batch_larger_than_the_training_set_is_refused_with_both_sizes(mnist):
    with pytest.raises(ValueError, match="batch_size 512 is larger than the training set \\(300 examples"):
        run(dataset=mnist, train_subset=300, batch_size=512, max_steps=1)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_run_of_every_preset_trains(name):
    """A preset is only data until it trains: two steps of each run, as the worker would run them."""
    for config in PRESETS[name].configs:
        short = validate_config({**config, "max_steps": 2, "epochs": None, "target_accuracy": None, "eval_every": None})
        summary = train.train(short, lambda *_: None)
        assert summary["steps"] == 2, config["name"]
