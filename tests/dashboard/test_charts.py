"""Chart builders: smoothing, bands, downsampling and traces, on hand-made points."""

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
    assert [max(trace.y) for trace in figure.data] == [line.y.max() for line in lines]  # each spike survives


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
