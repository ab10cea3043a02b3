"""The launch form's plain rules: which fields apply, where they sit, how refusals read."""

import itertools
from typing import get_args

import pytest

from dashboard import forms
from db.run_config import Cell, ConfigError, Implementation, Mode, RunConfig, Task, validate_config

# Every combination of the values that decide which fields apply.
CHOICES = {
    "task": get_args(Task),
    "cell": get_args(Cell),
    "mode": get_args(Mode),
    "implementation": get_args(Implementation),
    "layers": (1, 2),
}
COMBINATIONS = [dict(zip(CHOICES, values)) for values in itertools.product(*CHOICES.values())]
# A value other than the default for each field some combination leaves out.
PROBES = {
    "target_accuracy": 0.5,
    "implementation": "keras",
    "activation": "relu",
    "residual": True,
    "swap_memory": True,
    "variable_length": True,
    "head": "last3",
    "data_path": "mnist.npz",
}
# Fields the schema accepts everywhere but whose description limits them to one cell or task.
DESCRIBED = {
    "sru_highway": lambda chosen: chosen["cell"] == "sru",
    "n_steps": lambda chosen: chosen["task"] == "series",
}


def refused_fields(config: dict) -> set[str]:
    try:
        validate_config(config)
    except ConfigError as error:
        return {field for field, _ in error.errors}
    return set()


def test_every_field_but_the_name_sits_in_exactly_one_group():
    placed = [name for names in forms.GROUPS.values() for name in names]
    assert sorted(placed) == sorted(set(RunConfig.model_fields) - {"name"})


@pytest.mark.parametrize("chosen", COMBINATIONS, ids=lambda chosen: "-".join(map(str, chosen.values())))
def test_a_field_applies_exactly_when_the_schema_would_accept_a_value_for_it(chosen):
    base = {"name": "probe", "max_steps": 10, **chosen}
    if refused_fields(base):  # Keras has no SRU: no form reaches this combination
        return
    applicable = forms.applicable_fields(chosen)
    for name, value in PROBES.items():
        accepted = name not in refused_fields({**base, name: value})
        assert (name in applicable) == accepted, (name, chosen)
    for name, applies in DESCRIBED.items():
        assert (name in applicable) == applies(chosen), (name, chosen)
    always = set(RunConfig.model_fields) - set(PROBES) - set(DESCRIBED)
    assert always <= applicable


def test_each_field_comes_after_the_fields_that_decide_whether_it_applies():
    """The page draws the form top to bottom in one pass, so a deciding field must come first."""
    order = ["name", *(name for names in forms.GROUPS.values() for name in names)]
    for chosen, (decider, values) in itertools.product(COMBINATIONS, CHOICES.items()):
        for value in values:
            changed = forms.applicable_fields({**chosen, decider: value}) ^ forms.applicable_fields(chosen)
            assert all(order.index(name) > order.index(decider) for name in changed), (decider, changed)


def test_the_form_starts_as_a_valid_run_with_no_target_accuracy():
    specs = {spec.name: spec for spec in forms.field_specs()}
    start = {name: forms.initial_value(spec) for name, spec in specs.items()}
    assert start["target_accuracy"] is None
    assert start["max_steps"] == 300
    assert specs["target_accuracy"].optional
    assert specs["max_steps"].optional
    validate_config(forms.clean_values(start))


def test_refusals_use_the_labels_the_form_shows():
    assert forms.error_text("hidden_units", "must be greater than or equal to 1") == (
        "hidden units: must be greater than or equal to 1"
    )
    assert forms.error_text("max_steps", "set at least one stop criterion (target_accuracy, max_steps or epochs)") == (
        "max steps: set at least one stop criterion (target accuracy, max steps or epochs)"
    )
