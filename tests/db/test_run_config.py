"""The run config schema: what it accepts, and how it names what it refuses."""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from db.run_config import ConfigError, RunConfig, validate_config

VALID = {"name": "lstm-static", "task": "mnist", "cell": "lstm", "mode": "static", "max_steps": 10}


def refused_fields(changes, drop=()):
    data = {**VALID, **changes}
    for key in drop:
        data.pop(key)
    with pytest.raises(ConfigError) as refused:
        validate_config(data)
    return refused.value.errors


def test_a_valid_config_keeps_every_value_and_fills_defaults():
    config = validate_config(VALID)
    assert (config.cell, config.mode, config.max_steps) == ("lstm", "static", 10)
    assert config.batch_size == 128 and config.optimizer == "adam" and config.seed == 0


def test_an_integer_learning_rate_means_the_same_float():
    assert validate_config({**VALID, "learning_rate": 1}).learning_rate == 1.0


@pytest.mark.parametrize("field, value, words", [
    ("cell", "transformer", "must be one of"),
    ("task", "imagenet", "must be one of"),
    ("mode", "eager", "must be one of"),
    ("optimizer", "adagrad", "must be one of"),
    ("hidden_units", 0, "greater than or equal to 1"),
    ("hidden_units", -5, "greater than or equal to 1"),
    ("hidden_units", 10**6, "less than or equal to 4096"),
    ("batch_size", 0, "greater than or equal to 1"),
    ("learning_rate", 0.0, "greater than 0"),
    ("learning_rate", -0.1, "greater than 0"),
    ("learning_rate", math.nan, "finite"),
    ("learning_rate", math.inf, "finite"),
    ("max_steps", -1, "greater than or equal to 1"),
    ("epochs", 0, "greater than or equal to 1"),
    ("target_accuracy", 0.0, "greater than 0"),
    ("target_accuracy", 1.5, "less than or equal to 1"),
    ("hidden_units", "32", "valid integer"),
    ("hidden_units", 32.5, "valid integer"),
    ("max_steps", True, "valid integer"),
    ("bidirectional", "yes", "valid boolean"),
    ("name", "   ", "blank"),
    ("name", "", "at least 1 character"),
    ("keep_prob", 0.0, "greater than 0"),
    ("seed", -1, "greater than or equal to 0"),
])
def test_each_bad_value_is_refused_naming_its_field(field, value, words):
    errors = refused_fields({field: value})
    assert [name for name, _ in errors] == [field]
    assert words in errors[0][1]


def test_unknown_keys_are_refused_not_dropped():
    errors = refused_fields({"hiden_units": 64})
    assert errors[0][0] == "hiden_units"
    assert "unknown field" in errors[0][1] and "hidden_units" in errors[0][1]


def test_a_missing_name_is_named():
    assert refused_fields({}, drop=["name"])[0][0] == "name"


@pytest.mark.parametrize("changes, field", [
    ({"max_steps": None}, "max_steps"),
    ({"task": "series", "target_accuracy": 0.9}, "target_accuracy"),
    ({"cell": "sru", "implementation": "keras"}, "implementation"),
    ({"cell": "lstm", "activation": "relu"}, "activation"),
    ({"residual": True, "layers": 1}, "residual"),
    ({"swap_memory": True, "mode": "static"}, "swap_memory"),
])
def test_options_that_cannot_work_together_name_the_field_to_change(changes, field):
    errors = refused_fields(changes)
    assert errors[0][0] == field


def test_several_bad_fields_are_all_reported():
    fields = {name for name, _ in refused_fields({"cell": "x", "batch_size": 0, "learning_rate": -1.0})}
    assert fields == {"cell", "batch_size", "learning_rate"}


def test_something_that_is_not_a_mapping_is_refused():
    with pytest.raises(ConfigError) as refused:
        validate_config(["lstm"])
    assert refused.value.errors[0][0] == "config"


def test_configs_are_immutable():
    config = validate_config(VALID)
    with pytest.raises(Exception):
        config.hidden_units = 4


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=6,
)


@settings(max_examples=300, deadline=None)
@given(changes=st.dictionaries(st.sampled_from(sorted(RunConfig.model_fields) + ["extra"]), json_values, max_size=5))
def test_no_input_crashes_validation_and_every_refusal_names_a_field(changes):
    try:
        validate_config({**VALID, **changes})
    except ConfigError as refused:
        assert refused.errors
        for field, message in refused.errors:
            assert field and message
            assert field in set(RunConfig.model_fields) | {"extra", "config"} or field.split(".")[0] in RunConfig.model_fields
