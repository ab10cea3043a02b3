"""Presets are valid run configs that reproduce what SPEC's experiments describe."""

import pytest

from db.presets import PRESETS, preset


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_is_a_group_of_valid_distinct_runs(name):
    configs = PRESETS[name].run_configs()
    assert len(configs) >= 2
    assert len({config.name for config in configs}) == len(configs)
    assert PRESETS[name].reproduces.endswith((".", "?", ")"))


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_a_presets_contrast_names_values_its_runs_take(name):
    """The Compare page answers a preset's question from its runs' config values."""
    contrast = PRESETS[name].contrast
    if contrast is None:
        return
    values = {str(getattr(config, contrast.field)) for config in PRESETS[name].run_configs()}
    assert {contrast.subject, contrast.baseline} <= values


def test_the_write_ups_figures_are_stated_where_spec_gives_them():
    published = {name: preset.published for name, preset in PRESETS.items()}
    assert "1.5x" in published["e1-static-vs-dynamic"]
    assert "98.04%" in published["e3-lstm-vs-sru"]
    assert "97.19%" in published["e3-lstm-vs-sru"]
    assert "23.5 s" in published["e4-mini-mnist"]
    assert "0.04" in published["e5-textbook"]
    assert all(not text.endswith(".") for text in published.values())  # the page ends the sentence


def differing_fields(a, b):
    return {key for key in type(a).model_fields if getattr(a, key) != getattr(b, key)} - {"name"}


def test_e1_compares_static_and_dynamic_lstm_32_until_90_percent():
    static, dynamic = preset("e1-static-vs-dynamic").run_configs()
    assert differing_fields(static, dynamic) == {"mode"}
    assert (static.cell, static.hidden_units, static.learning_rate, static.batch_size) == ("lstm", 32, 0.01, 128)
    assert static.target_accuracy == 0.9


def test_e3_compares_lstm_and_sru_stacks_with_clipping():
    lstm, sru = preset("e3-lstm-vs-sru").run_configs()
    assert differing_fields(lstm, sru) == {"cell"}
    assert (lstm.layers, lstm.hidden_units, lstm.clip_norm, lstm.epochs, lstm.mode) == (2, 128, 1.0, 3, "static")


def test_e4_uses_1800_images_and_the_last_3_outputs():
    ours, keras = preset("e4-mini-mnist").run_configs()
    assert differing_fields(ours, keras) == {"implementation"}
    assert (ours.train_subset, ours.batch_size, ours.epochs, ours.head) == (1800, 64, 10, "last3")


def test_e5_has_the_basic_rnn_the_series_model_and_the_deep_dropout_model():
    basic, series, deep = preset("e5-textbook").run_configs()
    assert (basic.cell, basic.hidden_units, basic.batch_size, basic.learning_rate) == ("rnn", 150, 150, 0.001)
    assert (series.task, series.activation, series.hidden_units, series.max_steps) == ("series", "relu", 100, 1500)
    assert (deep.layers, deep.keep_prob, deep.learning_rate) == (3, 0.5, 0.01)


def test_an_unknown_preset_lists_the_known_ones():
    with pytest.raises(KeyError, match="e1-static-vs-dynamic"):
        preset("e9")


def test_e2_runs_static_and_dynamic_lstm_over_growing_series_lengths():
    configs = preset("e2-unrolling-cost").run_configs()
    assert sorted((config.mode, config.n_steps) for config in configs) == sorted(
        (mode, length) for mode in ("static", "dynamic") for length in (20, 50, 100, 200)
    )
    for static, dynamic in zip(configs[::2], configs[1::2]):
        assert differing_fields(static, dynamic) == {"mode"}  # each length, once each way
    assert {(config.task, config.cell, config.hidden_units) for config in configs} == {("series", "lstm", 32)}
    assert all(config.max_steps is not None and config.max_steps <= 500 for config in configs)  # minutes, not hours


def test_presets_name_the_compare_view_that_answers_them():
    assert preset("e1-static-vs-dynamic").view == "e1"
    assert preset("e2-unrolling-cost").view == "e2"
    assert preset("e3-lstm-vs-sru").view == "metrics"
