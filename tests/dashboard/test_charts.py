"""Chart builders: smoothing, bands, downsampling and traces, on hand-made points."""

import base64
import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from dashboard import charts, comparison


def run(run_id, **config):
    return SimpleNamespace(id=run_id, label=f"#{run_id} r{run_id}", config=config)


STATE = {"x": "step", "view": "metrics", "group": "", "band": "minmax", "smooth": 0.0, "log": False}


def points(run_id, steps, values, ms=10.0, metric="accuracy", start=1000.0):
    steps = np.asarray(steps)
    seconds = (steps - 1) * ms / 1000
    return pd.DataFrame(
        {
            "run_id": run_id,
            "metric": metric,
            "step": steps,
            "seconds": seconds,
            "wall": start + seconds,
            "value": np.asarray(values, dtype=float),
        }
    )


def test_ema_is_debiased_so_it_starts_at_the_first_value():
    smoothed = charts.ema([1.0, 1.0, 1.0], 0.9)
    assert smoothed == pytest.approx([1.0, 1.0, 1.0])  # without debiasing: 0.1, 0.19, 0.271
    # by hand: s1 = 0.5*0 + 0.5*2 = 1 -> /0.5 = 2; s2 = 0.5*1 + 0.5*4 = 2.5 -> /0.75
    assert charts.ema([2.0, 4.0], 0.5) == pytest.approx([2.0, 2.5 / 0.75])


def test_ema_skips_nan_and_zero_weight_is_identity():
    smoothed = charts.ema([1.0, np.nan, 3.0], 0.5)
    assert smoothed[0] == 1.0
    assert np.isnan(smoothed[1])
    assert smoothed[2] == pytest.approx((0.5 * 0.5 + 0.5 * 3.0) / 0.75)
    assert list(charts.ema([1.0, 5.0], 0.0)) == [1.0, 5.0]


def test_downsampling_keeps_the_extremes_and_short_lines_whole():
    x = np.arange(100_000, dtype=float)
    y = np.sin(x / 500)
    y[31_337], y[77_777] = 40.0, -40.0
    keep = charts.downsample(x, y, 1000)
    assert len(keep) <= 1000
    assert 31_337 in keep
    assert 77_777 in keep
    assert list(charts.downsample(x[:10], y[:10], 1000)) == list(range(10))
    assert list(charts.downsample([0, 1, 2], [1.0, np.nan, 2.0])) == [0, 2]


def test_bands_span_min_to_max_or_one_std_around_the_mean():
    a = pd.DataFrame({"step": [1, 2], "x": [0.0, 1.0], "y": [1.0, 2.0]})
    b = pd.DataFrame({"step": [1, 2], "x": [0.0, 3.0], "y": [3.0, 6.0]})
    minmax = charts.aggregate([a, b], "minmax")
    assert list(minmax["y"]) == [2.0, 4.0]
    assert list(minmax["x"]) == [0.0, 2.0]
    assert list(minmax["low"]) == [1.0, 2.0]
    assert list(minmax["high"]) == [3.0, 6.0]
    std = charts.aggregate([a, b], "std")
    assert list(std["low"]) == [1.0, 2.0]
    assert list(std["high"]) == [3.0, 6.0]


def test_one_line_per_run_or_per_group():
    runs = [run(1, mode="static", seed=0), run(2, mode="static", seed=1), run(3, mode="dynamic", seed=0)]
    data = pd.concat([points(r.id, [1, 2, 3], [0.1 * r.id, 0.2, 0.3]) for r in runs])
    per_run = charts.lines_for(data, runs, "accuracy", "seconds")
    assert [line.label for line in per_run] == ["#1 r1", "#2 r2", "#3 r3"]
    assert list(per_run[0].x) == pytest.approx([0.0, 0.01, 0.02])
    grouped = charts.lines_for(data, runs, "accuracy", "step", group_by="mode")
    assert [(line.label, line.runs) for line in grouped] == [("mode=static", 2), ("mode=dynamic", 1)]
    assert grouped[0].y[0] == pytest.approx(0.15)
    assert grouped[0].low[0] == pytest.approx(0.1)
    steps = charts.lines_for(data, runs[:1], "accuracy", "seconds", y_column="step")
    assert list(steps[0].y) == [1, 2, 3]


def test_trace_counts_axes_and_escaped_names():
    runs = [run(1, mode="static"), run(2, mode="static"), run(3, mode="dynamic")]
    runs[2].label = "<img src=x onerror=alert(1)>"
    data = pd.concat([points(r.id, [1, 2, 3], [0.1, 0.2, 0.3]) for r in runs])
    plain = charts.curve_figure(charts.lines_for(data, runs, "accuracy"), "t", "step", "acc")
    assert len(plain.data) == 3
    assert plain.layout.xaxis.title.text == "step"
    assert plain.data[2].name == "&lt;img src=x onerror=alert(1)&gt;"
    smoothed = charts.curve_figure(charts.lines_for(data, runs, "accuracy"), "t", "step", smoothing=0.5, log_y=True)
    assert len(smoothed.data) == 6
    assert smoothed.layout.yaxis.type == "log"
    assert [trace.opacity for trace in smoothed.data[:2]] == [0.25, None]
    grouped = charts.curve_figure(charts.lines_for(data, runs, "accuracy", group_by="mode"), "t", "step")
    assert len(grouped.data) == 4  # static: band (2 traces) + mean; dynamic (one run): mean only
    assert grouped.data[1].fill == "tonexty"


def test_wall_clock_axis_is_datetimes():
    data = points(1, [1, 2], [0.1, 0.2], start=1_700_000_000.0)
    figure = charts.curve_figure(charts.lines_for(data, [run(1)], "accuracy", "wall"), "t", "wall")
    assert str(pd.Timestamp(figure.data[0].x[0]).year) == "2023"
    assert figure.layout.xaxis.title.text == "wall clock"


def test_series_figures():
    series = {
        "instance": {"inputs": [0.0] * 20, "targets": [1.0] * 20, "predictions": [0.9] * 20},
        "rollouts": {"zeros": [0.0] * 320, "real": [1.0] * 320},
    }
    instance = charts.series_instance_figure(series, "r")
    assert [trace.name for trace in instance.data] == ["instance", "targets", "predictions"]
    assert instance.data[1].x[0] == 1  # targets are the window shifted by one step
    rollout = charts.rollout_figure(series, "r")
    assert [trace.name for trace in rollout.data] == ["seed: zeros", "seed: real"]
    assert len(rollout.data[0].y) == 320
    assert charts.series_instance_figure({}, "r") is None
    assert charts.rollout_figure({}, "r") is None


def test_a_loss_says_what_it_measures():
    assert charts.metric_label("loss", {"series"}) == "loss (MSE)"
    assert charts.metric_label("loss", {"mnist"}) == "loss (cross-entropy)"
    assert charts.metric_label("loss", {"series", "mnist"}) == "loss"
    assert charts.metric_label("loss", {"series"}, name_task=True) == "loss (MSE, series)"
    assert charts.metric_label("accuracy", {"mnist"}) == "batch accuracy"


def test_only_losses_and_errors_are_loss_like():
    assert all(charts.is_loss_like(metric) for metric in ("loss", "test_mse", "val_loss", "MSE"))
    assert not any(charts.is_loss_like(metric) for metric in ("accuracy", "test_accuracy", "step"))


def test_ema_equals_the_step_by_step_definition_on_long_noisy_curves():
    rng = np.random.RandomState(0)
    values = rng.randn(2000)
    values[[5, 50, 51, 700]] = np.nan
    values[7] = np.inf
    for weight in (0.3, 0.6, 0.99):
        expected, last, count = np.full_like(values, np.nan), 0.0, 0
        for index, value in enumerate(values):  # the definition, one value at a time
            if np.isfinite(value):
                last, count = weight * last + (1 - weight) * value, count + 1
                expected[index] = last / (1 - weight**count)
        assert np.allclose(charts.ema(values, weight), expected, equal_nan=True, rtol=1e-12, atol=1e-12)


def test_many_overlaid_runs_share_a_point_budget_and_keep_their_extremes():
    x = np.arange(10_000, dtype=float)
    lines = [charts.Line(f"run {i}", x, np.sin(x / 50) + (x == 5_000 + i) * 10) for i in range(20)]
    figure = charts.curve_figure(lines, "t")
    assert all(len(trace.x) <= charts.CHART_POINTS // 20 for trace in figure.data)
    # each spike survives (sent as float32: see test_plotted_arrays_are_compact_typed_arrays)
    assert [max(trace.y) for trace in figure.data] == [np.float32(line.y.max()) for line in lines]


def test_plotted_arrays_are_compact_typed_arrays():
    """Steps go to the browser as small integers, other values as float32: plotly encodes both as
    base64 typed arrays, far fewer bytes than float64, and the values stay as drawn."""
    steps = np.arange(1, 3001)
    values = np.linspace(2.3, 0.05, len(steps))
    data = points(1, steps, values)
    by_step = charts.curve_figure(charts.lines_for(data, [run(1)], "accuracy", "step"), "t", "step")
    [spec] = json.loads(by_step.to_json())["data"]
    assert spec["x"]["dtype"] in ("i2", "i4")
    assert spec["y"]["dtype"] == "f4"
    assert np.frombuffer(base64.b64decode(spec["y"]["bdata"]), dtype="f4") == pytest.approx(
        values[charts.downsample(steps, values)], rel=1e-6
    )
    by_time = charts.curve_figure(charts.lines_for(data, [run(1)], "accuracy", "seconds"), "t", "seconds")
    assert json.loads(by_time.to_json())["data"][0]["x"]["dtype"] == "f4"  # seconds are not whole


# --- the Compare page's figures (dashboard.comparison.build_figures) -------------------


def task_points(runs):
    """Loss for every run, accuracy for MNIST runs and a test MSE for series runs, as workers record them."""
    frames = []
    for r in runs:
        frames.append(points(r.id, [1, 2, 3], [2.0, 1.0, 0.5], metric="loss"))
        extra = "accuracy" if r.config["task"] == "mnist" else "test_mse"
        frames.append(points(r.id, [1, 2, 3], [0.1, 0.5, 0.9], metric=extra))
    return pd.concat(frames, ignore_index=True)


def built(runs, **state):
    figures = comparison.build_figures(runs, task_points(runs), {**STATE, **state})
    return {key: figure for key, figure in figures}


def test_each_metric_is_drawn_once_against_the_chosen_x():
    runs = [run(1, task="mnist"), run(2, task="mnist")]
    assert list(built(runs, x="step")) == ["accuracy", "loss"]
    for x in ("seconds", "wall"):
        figures = built(runs, x=x)
        assert list(figures) == ["steps", "accuracy", "loss"]  # steps over time: only against a clock
        assert {figure.layout.xaxis.title.text for figure in figures.values()} == {charts.X_AXES[x]}
        assert figures["loss"].layout.title.text == f"Loss (cross-entropy) vs {charts.X_AXES[x]}"
    assert comparison.build_figures(runs, points(1, [], []), STATE) == []  # no points yet: no empty charts


def test_the_e1_view_is_exactly_its_three_plots():
    runs = [run(1, task="mnist")]
    for x, clock in (("step", "seconds"), ("seconds", "seconds"), ("wall", "wall")):
        figures = built(runs, view="e1", x=x)
        assert list(figures) == ["steps", "accuracy_time", "accuracy_step"]
        assert [(f.layout.xaxis.title.text, f.layout.yaxis.title.text) for f in figures.values()] == [
            (charts.X_AXES[clock], "step"),
            (charts.X_AXES[clock], "batch accuracy"),
            ("step", "batch accuracy"),
        ]
    series_only = built([run(1, task="series")], view="e1")
    assert list(series_only) == ["steps"]  # E1's accuracy plots need MNIST runs


def test_log_y_applies_to_losses_and_errors_only():
    runs = [run(1, task="mnist"), run(2, task="series")]
    for view in ("metrics", "e1"):
        for key, figure in built(runs, view=view, x="seconds", log=True).items():
            expected = "log" if key.startswith(("loss", "test_mse")) else None
            assert figure.layout.yaxis.type == expected, key
    assert all(figure.layout.yaxis.type is None for figure in built(runs, x="seconds").values())


def test_tasks_get_their_own_chart_of_a_metric_that_means_something_else_per_task():
    mnist, series = run(1, task="mnist"), run(2, task="series")
    figures = built([mnist, series])
    assert list(figures) == ["accuracy", "loss_mnist", "loss_series", "test_mse"]
    assert figures["loss_mnist"].layout.title.text == "Loss (cross-entropy, mnist) vs step"
    assert figures["loss_series"].layout.title.text == "Loss (MSE, series) vs step"
    assert [trace.name for trace in figures["loss_mnist"].data] == [mnist.label]
    assert [trace.name for trace in figures["loss_series"].data] == [series.label]
    assert [trace.name for trace in figures["accuracy"].data] == [mnist.label]  # accuracy: MNIST only
    assert list(built([mnist, run(3, task="mnist")])) == ["accuracy", "loss"]  # one task: one chart


# --- SPEC E2: each run's cost against its sequence length ----------------------------------


def e2_run(run_id, mode, length, trace=None, growth=None, step_ms=None, **config):
    """A finished series run as E2's charts read it: its config and the figures its summary holds."""
    figures = {"trace_seconds": trace, "memory_growth_mb": growth, "median_step_ms": step_ms}
    return SimpleNamespace(
        id=run_id,
        label=f"#{run_id} r{run_id}",
        config={"task": "series", "cell": "lstm", "mode": mode, "n_steps": length, "seed": 0, **config},
        summary={key: value for key, value in figures.items() if value is not None},
    )


E2_RUNS = [
    e2_run(1, "static", 20, trace=3.0, growth=56.0, step_ms=5.0),
    e2_run(2, "dynamic", 20, trace=1.8, growth=23.0, step_ms=8.8),
    e2_run(3, "static", 200, trace=22.5, growth=300.0, step_ms=53.0),
    e2_run(4, "dynamic", 200, trace=1.9, growth=35.0, step_ms=70.0),
]


def traces(figure):
    """(name, x, y) of each trace, as plain lists."""
    return [(trace.name, list(trace.x), list(trace.y)) for trace in figure.data]


def test_the_e2_view_plots_trace_time_memory_and_step_time_against_the_length_a_line_per_mode():
    figures = built(E2_RUNS, view="e2", x="wall", smooth=0.9, log=True)  # settings of curves do not apply
    assert list(figures) == ["trace_by_length", "memory_by_length", "step_ms_by_length"]
    assert {figure.layout.xaxis.title.text for figure in figures.values()} == {"sequence length (time steps)"}
    assert [figure.layout.yaxis.title.text for figure in figures.values()] == [
        "trace time (s)",
        "memory growth (MiB)",
        "ms per step (median)",
    ]
    assert traces(figures["trace_by_length"]) == [
        ("mode=dynamic", [20, 200], [1.8, 1.9]),
        ("mode=static", [20, 200], [3.0, 22.5]),
    ]
    assert traces(figures["memory_by_length"])[1] == ("mode=static", [20, 200], [56.0, 300.0])
    assert traces(figures["step_ms_by_length"])[0] == ("mode=dynamic", [20, 200], [8.8, 70.0])
    assert all(figure.layout.yaxis.type is None for figure in figures.values())
    assert not any(trace.error_y.visible for figure in figures.values() for trace in figure.data)  # no repeats


def test_e2_spans_seed_repeats_with_the_band_and_names_the_runs_of_each_point():
    runs = [
        e2_run(1, "static", 50, trace=4.0),
        e2_run(2, "static", 50, trace=6.0, seed=1),
        e2_run(3, "static", 100, trace=9.0),
    ]
    [(key, figure)] = comparison.build_figures(runs, points(1, [], []), {**STATE, "view": "e2"})
    [line] = figure.data
    assert (key, line.name, list(line.x), list(line.y)) == ("trace_by_length", "mode=static", [50, 100], [5.0, 9.0])
    assert (list(line.error_y.array), list(line.error_y.arrayminus), line.error_y.visible) == (
        [1.0, 0.0],
        [1.0, 0.0],
        True,
    )
    assert list(line.text) == ["#1 r1<br>#2 r2", "#3 r3"]
    [(_, spread)] = comparison.build_figures(runs, points(1, [], []), {**STATE, "view": "e2", "band": "std"})
    assert list(spread.data[0].error_y.array) == [1.0, 0.0]  # ± 1 std of 4 and 6


def test_e2_lines_follow_what_differs_or_the_grouping_and_skip_runs_without_figures():
    runs = [*E2_RUNS, e2_run(5, "static", 50, trace=5.0, cell="gru"), e2_run(6, "dynamic", 100)]  # 6: still queued
    figures = built(runs, view="e2")
    assert [trace.name for trace in figures["trace_by_length"].data] == [
        "cell=gru mode=static",
        "cell=lstm mode=dynamic",
        "cell=lstm mode=static",
    ]
    assert list(figures) == ["trace_by_length", "memory_by_length", "step_ms_by_length"]
    grouped = built(runs, view="e2", group="cell")
    assert [trace.name for trace in grouped["trace_by_length"].data] == ["cell=gru", "cell=lstm"]
    assert comparison.build_figures([e2_run(7, "static", 20)], points(7, [], []), {**STATE, "view": "e2"}) == []


def test_e2_takes_ms_per_step_from_the_curve_when_the_summary_lacks_it_and_mnist_is_28_steps():
    running = e2_run(1, "static", 50)  # no summary yet: its curve says 10 ms a step
    mnist = SimpleNamespace(
        id=2, label="#2 r2", config={"task": "mnist", "cell": "lstm", "mode": "static"}, summary={"trace_seconds": 2.0}
    )
    figures = built([running, mnist], view="e2")
    assert traces(figures["step_ms_by_length"]) == [
        ("task=mnist", [28], [pytest.approx(10.0)]),
        ("task=series", [50], [pytest.approx(10.0)]),
    ]
    assert traces(figures["trace_by_length"]) == [("task=mnist", [28], [2.0])]
    assert comparison.sequence_length({"task": "series", "n_steps": 120}) == 120


def test_e2_escapes_run_names_in_the_hover():
    runs = [SimpleNamespace(**{**vars(E2_RUNS[0]), "label": "#1 <img src=x onerror=alert(1)>"})]
    [line] = built(runs, view="e2")["trace_by_length"].data
    assert list(line.text) == ["#1 &lt;img src=x onerror=alert(1)&gt;"]
