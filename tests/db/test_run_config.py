"""The run config schema: what it accepts, and how it names what it refuses."""

import math
from typing import get_args

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from db.run_config import (
    ACTIVATIONS,
    CELLS,
    FIELD_RULES,
    HEADS,
    IMPLEMENTATIONS,
    MODES,
    OPTIMIZERS,
    STOP_PROBLEM,
    TASKS,
    ConfigError,
    RunConfig,
    combination_problems,
    inapplicable_fields,
    validate_config,
)

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
    assert config.batch_size == 128
    assert config.optimizer == "adam"
    assert config.seed == 0


def test_an_integer_learning_rate_means_the_same_float():
    assert validate_config({**VALID, "learning_rate": 1}).learning_rate == 1.0


@pytest.mark.parametrize(
    "field, value, words",
    [
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
    ],
)
def test_each_bad_value_is_refused_naming_its_field(field, value, words):
    errors = refused_fields({field: value})
    assert [name for name, _ in errors] == [field]
    assert words in errors[0][1]


def test_unknown_keys_are_refused_not_dropped():
    errors = refused_fields({"hiden_units": 64})
    assert errors[0][0] == "hiden_units"
    assert "unknown field" in errors[0][1]
    assert "hidden_units" in errors[0][1]


def test_a_missing_name_is_named():
    assert refused_fields({}, drop=["name"])[0][0] == "name"


# Every cross-field rule: the changes to VALID that break it (and no other), the field it names, words it says.
COMBINATION_CASES = [
    ({"max_steps": None}, "max_steps", "set at least one stop criterion"),
    ({"task": "series", "target_accuracy": 0.9}, "target_accuracy", "the series task has no accuracy"),
    ({"cell": "sru", "implementation": "keras"}, "implementation", "Keras has no SRU layer"),
    ({"cell": "lstm", "activation": "relu"}, "activation", "only the rnn cell takes an activation"),
    ({"residual": True, "layers": 1}, "residual", "use at least 2 layers"),
    ({"swap_memory": True, "mode": "static"}, "swap_memory", "only the dynamic mode's while loop can swap memory"),
    ({"variable_length": True, "mode": "dynamic"}, "variable_length", "only the series task has windows"),
    (
        {"task": "series", "variable_length": True, "mode": "static"},
        "variable_length",
        "static unrolling needs every sequence of the same length",
    ),
    ({"task": "series", "head": "last3"}, "head", "the last-3-outputs head is for MNIST"),
    ({"task": "series", "data_path": "mnist.npz"}, "data_path", "only the mnist task reads data files"),
]


@pytest.mark.parametrize("changes, field, words", COMBINATION_CASES, ids=lambda case: str(case))
def test_options_that_cannot_work_together_name_the_field_to_change(changes, field, words):
    errors = refused_fields(changes)
    assert errors == [(field, errors[0][1])]  # one refusal, naming the field to change
    assert words in errors[0][1]
    assert combination_problems({**VALID, **changes}) == errors  # the plain function says the same


def test_every_cross_field_rule_has_a_refusal_case():
    stated = [STOP_PROBLEM] + [(rule.field, rule.message) for rule in FIELD_RULES]
    covered = [
        (field, message)
        for field, message in stated
        if any(field == case_field and words in message for _, case_field, words in COMBINATION_CASES)
    ]
    assert covered == stated
    assert len(COMBINATION_CASES) == len(stated)


def test_each_case_is_accepted_once_its_field_is_back_at_the_default():
    defaults = {name: info.default for name, info in RunConfig.model_fields.items()}
    for changes, field, _ in COMBINATION_CASES:
        fixed = {**VALID, **changes, field: defaults[field]}
        if field == "max_steps":
            fixed["max_steps"] = 10  # the stop criterion rule needs a value, not the default
        assert combination_problems(fixed) == [], (changes, field)
        validate_config(fixed)


def test_combination_problems_takes_plain_values_with_defaults_for_the_rest():
    assert combination_problems({"max_steps": 5}) == []
    assert combination_problems({}) == [STOP_PROBLEM]
    # Several problems at once, in the order the rules are checked; a config reports the first.
    problems = combination_problems({"cell": "gru", "activation": "relu", "swap_memory": True, "epochs": 1})
    assert [field for field, _ in problems] == ["activation", "swap_memory"]
    assert refused_fields({"cell": "gru", "activation": "relu", "swap_memory": True}) == problems[:1]


def test_inapplicable_fields_are_those_a_rule_holds_at_the_default():
    assert inapplicable_fields({"cell": "rnn", "layers": 2, "mode": "dynamic", "task": "series"}) == {
        "target_accuracy",
        "head",
        "data_path",
    }
    assert inapplicable_fields({"cell": "sru"}) == {
        "implementation",
        "activation",
        "residual",
        "swap_memory",
        "variable_length",
    }


def test_the_names_are_the_literal_types_values():
    from db import run_config

    for names, literal in [
        (TASKS, run_config.Task),
        (CELLS, run_config.Cell),
        (MODES, run_config.Mode),
        (IMPLEMENTATIONS, run_config.Implementation),
        (OPTIMIZERS, run_config.Optimizer),
        (ACTIVATIONS, run_config.Activation),
        (HEADS, run_config.Head),
    ]:
        assert names == get_args(literal)
    assert CELLS == ("rnn", "lstm", "gru", "sru")


def test_several_bad_fields_are_all_reported():
    fields = {name for name, _ in refused_fields({"cell": "x", "batch_size": 0, "learning_rate": -1.0})}
    assert fields == {"cell", "batch_size", "learning_rate"}


def test_something_that_is_not_a_mapping_is_refused():
    with pytest.raises(ConfigError) as refused:
        validate_config(["lstm"])
    assert refused.value.errors[0][0] == "config"


def test_configs_are_immutable():
    config = validate_config(VALID)
    with pytest.raises(ValidationError, match="frozen"):
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
            assert field
            assert message
            assert (
                field in set(RunConfig.model_fields) | {"extra", "config"}
                or field.split(".")[0] in RunConfig.model_fields
            )
