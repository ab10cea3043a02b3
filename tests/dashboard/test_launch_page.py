"""The Launch page through Streamlit's AppTest, on a real SQLite file."""

import time
from urllib.parse import parse_qs

import pytest
from sqlalchemy import select

from dashboard import forms
from db.models import Run, RunStatus
from db.presets import PRESETS
from db.run_config import RunConfig, config_to_json, validate_config

SPECS = {spec.name: spec for spec in forms.field_specs()}
# The fields that decide which others are drawn: set first, then the page reruns.
DRIVERS = ("task", "cell", "mode", "layers")
PRESET_RUNS = [
    pytest.param(preset, config, id=config["name"]) for preset in PRESETS.values() for config in preset.configs
]


def stored_runs(factory):
    with factory() as session:
        return session.scalars(select(Run).order_by(Run.id)).all()


def field(at, name):
    """The widget drawing a config field, or None when the page does not draw it."""
    widgets = {"choice": at.selectbox, "bool": at.checkbox, "text": at.text_input}.get(
        SPECS[name].kind, at.number_input
    )
    return next((widget for widget in widgets if widget.key == f"field_{name}"), None)


def drawn(at):
    return {name for name in SPECS if field(at, name) is not None}


def clear(widget):
    """Empty a box as a browser user can: Streamlit clears only a number box that started empty."""
    if widget.type == "text_input":
        return widget.set_value("")
    assert not widget.proto.HasField("default"), f"{widget.key} cannot be cleared in a browser"
    return widget.set_value(None)


def fill_form(at, config: RunConfig):
    """Set every drawn field to the config's value (an unset optional is cleared), drivers first."""
    for name in DRIVERS:
        field(at, name).set_value(getattr(config, name))
    at.run()
    for name in drawn(at) - set(DRIVERS):
        value = getattr(config, name)
        clear(field(at, name)) if value is None else field(at, name).set_value(value)
    return at.run()


@pytest.mark.parametrize("preset, config", PRESET_RUNS)
def test_every_run_of_every_preset_can_be_launched_from_the_form(app_factory, open_page, preset, config):
    """Fill the form from a preset run's config and queue it: the stored config is the preset's."""
    expected = validate_config(dict(config))
    at = fill_form(open_page("launch"), expected)
    assert not at.error, [error.value for error in at.error]
    at.button(key="queue_runs").click().run()
    assert not at.exception
    assert "Queued run 1" in at.success[0].value
    [run] = stored_runs(app_factory)
    assert run.config == config_to_json(expected)


def test_a_series_run_with_target_accuracy_cleared_queues(app_factory, open_page):
    """A target typed for MNIST is not drawn for the series task, and not stored."""
    at = open_page("launch")
    at.number_input(key="field_target_accuracy").set_value(0.95).run()
    at.selectbox(key="field_task").set_value("series").run()
    assert field(at, "target_accuracy") is None
    assert not at.error
    at.button(key="queue_runs").click().run()
    [run] = stored_runs(app_factory)
    assert (run.config["task"], run.config["target_accuracy"], run.config["max_steps"]) == ("series", None, 300)


def test_target_accuracy_starts_unset_and_every_optional_field_can_be_cleared(app_factory, open_page):
    at = open_page("launch")
    assert field(at, "target_accuracy").value is None
    assert field(at, "max_steps").value == 300
    at.number_input(key="field_target_accuracy").set_value(0.95)
    at.number_input(key="field_clip_norm").set_value(1.0).run()
    for name in drawn(at):
        if SPECS[name].optional:
            clear(field(at, name))
    at.number_input(key="field_epochs").set_value(2).run()
    at.button(key="queue_runs").click().run()
    [run] = stored_runs(app_factory)
    assert (run.config["target_accuracy"], run.config["clip_norm"], run.config["max_steps"], run.config["epochs"]) == (
        None,
        None,
        None,
        2,
    )


def test_only_the_fields_that_apply_are_drawn(app_factory, open_page):
    at = open_page("launch")
    assert drawn(at) == forms.applicable_fields({})
    assert not drawn(at) & {"sru_highway", "activation", "n_steps", "variable_length", "swap_memory", "residual"}
    at.selectbox(key="field_task").set_value("series")
    at.selectbox(key="field_cell").set_value("rnn")
    at.selectbox(key="field_mode").set_value("dynamic").run()
    assert {"n_steps", "variable_length", "activation", "swap_memory"} <= drawn(at)
    assert not drawn(at) & {"head", "data_path", "target_accuracy", "sru_highway"}
    assert [header.value for header in at.subheader][:4] == list(forms.GROUPS)


def test_launching_through_the_form_queues_a_validated_run(app_factory, open_page):
    at = open_page("launch")
    at.text_input(key="field_name").set_value("from the form")
    at.selectbox(key="field_mode").set_value("dynamic")
    at.number_input(key="field_hidden_units").set_value(64)
    at.button(key="queue_runs").click().run()
    assert not at.exception
    assert not at.error
    assert "Queued run 1" in at.success[0].value
    [run] = stored_runs(app_factory)
    assert (run.name, run.status, run.config["mode"], run.config["hidden_units"], run.group_name) == (
        "from the form",
        RunStatus.QUEUED,
        "dynamic",
        64,
        None,
    )


def test_a_bad_field_shows_its_message_as_it_is_typed_and_queues_nothing(app_factory, open_page, shown):
    at = open_page("launch")
    at.number_input(key="field_hidden_units").set_value(0)
    at.number_input(key="field_learning_rate").set_value(-1.0).run()  # no click: checked on every rerun
    messages = [shown(error) for error in at.error]
    assert any(m.startswith("hidden units: must be greater than or equal to 1") for m in messages)
    assert any(m.startswith("learning rate: must be greater than 0") for m in messages)
    assert "Nothing can be queued" in messages[-1]
    assert at.button(key="queue_runs").disabled
    assert stored_runs(app_factory) == []


def test_a_grid_shows_its_size_and_queues_the_product_as_one_group(app_factory, open_page):
    at = open_page("launch")
    at.multiselect(key="grid_cell").set_value(["lstm", "gru"])
    at.multiselect(key="grid_mode").set_value(["static", "dynamic"])
    at.text_input(key="grid_hidden_units").set_value("8, 16")
    at.number_input(key="grid_repeats").set_value(2)
    at.text_input(key="launch_group").set_value("my grid").run()
    assert "queues **16** runs" in at.info[0].value
    at.button(key="queue_runs").click().run()
    assert not at.exception
    assert "Queued 16 runs" in at.success[0].value
    runs = stored_runs(app_factory)
    assert len(runs) == 16
    assert {run.group_name for run in runs} == {"my grid"}
    assert {
        (run.config["cell"], run.config["mode"], run.config["hidden_units"], run.config["seed"]) for run in runs
    } == {(c, m, h, s) for c in ("lstm", "gru") for m in ("static", "dynamic") for h in (8, 16) for s in (0, 1)}


def test_a_grid_past_the_queue_limit_is_refused(app_factory, monkeypatch, open_page, shown):
    monkeypatch.setenv("UNROLL_MAX_QUEUED", "3")
    at = open_page("launch")
    at.text_input(key="grid_hidden_units").set_value("8, 16, 32, 64").run()
    assert "takes at most 3" in shown(at.error[0])
    assert "has 4 runs" in shown(at.error[0])
    assert at.button(key="queue_runs").disabled
    assert stored_runs(app_factory) == []


def test_a_huge_grid_is_refused_by_its_size_without_being_built(app_factory, open_page, shown):
    """4 cells x 2 modes x 20 sizes x 20 lengths x 100 seeds = 320,000 runs: counted, never built."""
    at = open_page("launch")
    at.selectbox(key="field_task").set_value("series").run()
    at.multiselect(key="grid_cell").set_value(["rnn", "lstm", "gru", "sru"])
    at.multiselect(key="grid_mode").set_value(["static", "dynamic"])
    at.text_input(key="grid_hidden_units").set_value(" ".join(str(size) for size in range(1, 21)))
    at.text_input(key="grid_n_steps").set_value(" ".join(str(length) for length in range(2, 22)))
    at.number_input(key="grid_repeats").set_value(100)
    started = time.perf_counter()
    at.run()
    assert time.perf_counter() - started < 5  # building them all took 28 s
    assert "this grid has 320,000 runs and the queue takes at most 500" in shown(at.error[0])
    assert at.button(key="queue_runs").disabled
    assert stored_runs(app_factory) == []


def test_a_grid_list_past_its_length_limit_is_refused_by_name(app_factory, open_page, shown):
    at = open_page("launch")
    at.text_input(key="grid_hidden_units").set_value(" ".join(str(size) for size in range(1, 22))).run()
    assert shown(at.error[0]) == "hidden units to try: at most 20 values, not 21"
    assert at.button(key="queue_runs").disabled


def test_the_page_says_which_mnist_the_worker_will_use(app_factory, open_page, monkeypatch, shown, tmp_path):
    monkeypatch.setenv("UNROLL_MNIST_PATH", str(tmp_path / "mnist.npz"))
    at = open_page("launch")
    assert any(f"UNROLL_MNIST_PATH, {tmp_path / 'mnist.npz'}" in shown(caption) for caption in at.caption)


def test_a_preset_queues_its_runs_as_a_group(app_factory, open_page):
    at = open_page("launch")
    preset = PRESETS["e1-static-vs-dynamic"]
    assert any(preset.reproduces == markdown.value for markdown in at.markdown)
    at.button(key=f"preset_{preset.name}").click().run()
    assert not at.exception
    assert "Queued 2 runs" in at.success[0].value
    runs = stored_runs(app_factory)
    assert [run.name for run in runs] == ["E1 lstm static", "E1 lstm dynamic"]
    assert len({run.group_name for run in runs}) == 1
    assert runs[0].group_name.startswith(preset.name)


def test_a_preset_with_3_repeats_queues_every_config_with_seeds_1_to_3_in_one_group(app_factory, open_page):
    at = open_page("launch")
    preset = PRESETS["e3-lstm-vs-sru"]
    assert at.button(key=f"preset_{preset.name}").proto.label == "Queue 2 runs"
    at.checkbox(key=f"preset_repeats_{preset.name}").check().run()
    assert at.button(key=f"preset_{preset.name}").proto.label == "Queue 6 runs"
    at.button(key=f"preset_{preset.name}").click().run()
    assert not at.exception
    assert "Queued 6 runs" in at.success[0].value
    runs = stored_runs(app_factory)
    assert sorted((run.config["cell"], run.config["seed"]) for run in runs) == [
        (cell, seed) for cell in ("lstm", "sru") for seed in (1, 2, 3)
    ]
    assert [run.name for run in runs[:2]] == ["E3 lstm 2x128 seed=1", "E3 sru 2x128 seed=1"]
    [group] = {run.group_name for run in runs}
    assert group.startswith(preset.name)


def test_a_preset_launch_links_to_compare_on_the_view_that_answers_it(app_factory, open_page):
    at = open_page("launch")
    preset = PRESETS["e2-unrolling-cost"]
    at.button(key=f"preset_{preset.name}").click().run()
    assert not at.exception
    ids = ",".join(str(run.id) for run in stored_runs(app_factory))
    [link] = at.get("page_link")
    assert link.proto.label == "Compare them as they train"
    assert link.proto.page.endswith("compare")
    assert parse_qs(link.proto.query_string) == {"runs": [ids], "view": ["e2"]}


def test_a_single_run_launch_draws_no_compare_link(app_factory, open_page):
    at = open_page("launch")
    at.button(key="queue_runs").click().run()
    assert not at.exception
    assert at.success
    assert not at.get("page_link")
