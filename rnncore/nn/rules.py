"""Which layer options go together: the library's one statement of its cross-option rules.

`RNNSpec`, `make_cell`, `static_unroll` and the network's call all refuse through
`layer_problems`, and so do the benchmarks when they skip a combination. The options are
plain values named as `RNNSpec` names them, plus `variable_length` (the inputs come with
per-example lengths, `sequence_length`)::

    layer_problems({"cell": "lstm", "activation": "relu"})
    # [("activation", "only the rnn cell takes an activation; lstm, gru and sru use their own gates")]

Each rule is about one option that every layer takes at its neutral value (tanh, Unroll's
own cells, no residual, no swapping, equal lengths) and only some layers take otherwise.
An option left out of `values` counts as neutral; the options a rule reads to decide must
then be given (`make_cell` gives the cell with the activation).

db/run_config.py states these rules again, word for word, for the run config (the
library imports nothing from db/, and db/ nothing from here); a test checks that the two
refuse every combination alike.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple


class LayerRule(NamedTuple):
    """`option` may leave its `neutral` value only where `allowed(values)` holds; `message` says why not."""

    option: str
    neutral: Any
    allowed: Callable[[Mapping[str, Any]], bool]
    message: str


LAYER_RULES = (
    LayerRule(
        "implementation",
        "unroll",
        lambda v: v["cell"] != "sru",
        "Keras has no SRU layer; use implementation 'unroll' for the sru cell",
    ),
    LayerRule(
        "activation",
        "tanh",
        lambda v: v["cell"] == "rnn",
        "only the rnn cell takes an activation; lstm, gru and sru use their own gates",
    ),
    LayerRule(
        "residual",
        False,
        lambda v: v["layers"] >= 2,
        "residual connections join layers of equal width: use at least 2 layers",
    ),
    LayerRule(
        "swap_memory", False, lambda v: v["mode"] == "dynamic", "only the dynamic mode's while loop can swap memory"
    ),
    LayerRule(
        "variable_length",
        False,
        lambda v: v["mode"] != "static",
        "static unrolling needs every sequence of the same length: use mode 'dynamic'",
    ),
)


def layer_problems(values: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(option, message) for each rule `values` break, in the order of LAYER_RULES; [] when they fit."""
    return [
        (rule.option, rule.message)
        for rule in LAYER_RULES
        if values.get(rule.option, rule.neutral) != rule.neutral and not rule.allowed(values)
    ]


def refuse_layer_problems(values: Mapping[str, Any]) -> None:
    """Raise ValueError("option: message") for the first rule `values` break."""
    problems = layer_problems(values)
    if problems:
        option, message = problems[0]
        raise ValueError(f"{option}: {message}")
