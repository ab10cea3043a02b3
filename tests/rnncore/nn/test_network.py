"""The network entry point: RNNSpec, build_rnn, count_parameters."""

import dataclasses
import itertools

import keras
import numpy as np
import pytest
import tensorflow as tf

from db import run_config
from rnncore.nn import cells, network, rules
from rnncore.nn.network import IMPLEMENTATIONS, MODES, RNNSpec, build_rnn, count_parameters
from rnncore.nn.unroll import dynamic_unroll, static_unroll

B, T, F, H = 4, 6, 3, 5
TOL = dict(rtol=1e-5, atol=1e-5)
LENGTHS = [6, 2, 0, 4]


def random_inputs(seed=0, features=F):
    return tf.constant(np.random.default_rng(seed).normal(size=(B, T, features)), tf.float32)


def variable_count(layer):
    return sum(int(np.prod(v.shape)) for v in layer.trainable_variables)


def run_with_gradients(layer, x, compiled=False, **kwargs):
    """Outputs, final states and the gradients of a loss on both, with respect to inputs and
    weights (inside a tf.function when compiled)."""
    with tf.GradientTape() as tape:
        tape.watch(x)
        outputs, states = (tf.function(layer) if compiled else layer)(x, **kwargs)
        loss = tf.reduce_sum(outputs * tf.cos(tf.range(outputs.shape[-1], dtype=tf.float32)))
        loss += sum(tf.reduce_sum(s**2) for s in tf.nest.flatten(states))
    return outputs, states, tape.gradient(loss, [x] + layer.trainable_variables)


def assert_all_close(first, second):
    first, second = tf.nest.flatten(first), tf.nest.flatten(second)
    assert len(first) == len(second)
    for a, b in zip(first, second):
        np.testing.assert_allclose(a, b, **TOL)


def test_spec_defaults_and_frozen():
    spec = RNNSpec()
    assert dataclasses.asdict(spec) == dict(
        cell="lstm",
        units=32,
        layers=1,
        mode="static",
        implementation="unroll",
        activation="tanh",
        sru_highway=True,
        bidirectional=False,
        residual=False,
        keep_prob=1.0,
        swap_memory=False,
        seed=0,
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.units = 64


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(cell="sru", implementation="keras"), "no SRU layer"),
        (dict(residual=True, layers=1), "residual connections join layers of equal width"),
        (dict(cell="gru", activation="relu"), "activation: only the rnn cell takes an activation"),
        (dict(swap_memory=True, mode="static"), "swap_memory: only the dynamic mode's while loop can swap memory"),
        (dict(keep_prob=0.0), r"keep_prob must be in \(0, 1\]"),
        (dict(keep_prob=1.5), r"keep_prob must be in \(0, 1\]"),
        (dict(cell="transformer"), "cell must be one of"),
        (dict(mode="eager"), "mode must be one of"),
        (dict(implementation="cudnn"), "implementation must be one of"),
        (dict(activation="sigmoid"), "activation must be one of"),
        (dict(units=0), "units must be at least 1"),
        (dict(layers=0), "layers must be at least 1"),
    ],
)
def test_spec_refuses_impossible_combinations(options, message):
    with pytest.raises(ValueError, match=message):
        RNNSpec(**options)


def test_call_refusals():
    layer = build_rnn(RNNSpec(cell="rnn", units=H), F)
    with pytest.raises(ValueError, match="variable_length: static unrolling needs every sequence of the same length"):
        layer(random_inputs(), sequence_length=tf.constant(LENGTHS))
    keras_layer = build_rnn(RNNSpec(cell="rnn", units=H, implementation="keras"), F)
    with pytest.raises(ValueError, match="variable_length: static unrolling needs every sequence of the same length"):
        keras_layer(random_inputs(), sequence_length=tf.constant(LENGTHS))
    with pytest.raises(ValueError, match="inputs must have 3 features"):
        layer(random_inputs(features=4))


@pytest.mark.parametrize("cell", cells.CELLS)
@pytest.mark.parametrize("input_size", [F, H])
@pytest.mark.parametrize("layers, bidirectional", [(1, False), (3, False), (2, True)])
def test_parameter_count_formula_equals_variables(cell, input_size, layers, bidirectional):
    spec = RNNSpec(cell=cell, units=H, layers=layers, bidirectional=bidirectional, keep_prob=0.5)
    assert count_parameters(spec, input_size) == variable_count(build_rnn(spec, input_size))


def test_parameter_counts_by_hand_and_against_keras():
    # LSTM 28 -> 32: 4 gates * (28*32 input + 32*32 recurrent + 32 bias).
    assert count_parameters(RNNSpec(cell="lstm", units=32), 28) == 7808
    # GRU (reset_after): 3 * (28*32 + 32*32 + 2*32); RNN: 28*32 + 32*32 + 32.
    assert count_parameters(RNNSpec(cell="gru", units=32), 28) == 5952
    assert count_parameters(RNNSpec(cell="rnn", units=32), 28) == 1952
    # SRU: 4 blocks of 28*32 (x' for the highway) + 2*32; 3 blocks when sizes are equal or highway is off.
    assert count_parameters(RNNSpec(cell="sru", units=32), 28) == 3648
    assert count_parameters(RNNSpec(cell="sru", units=32, sru_highway=False), 28) == 2752
    assert count_parameters(RNNSpec(cell="sru", units=28), 28) == 2408
    # Two bidirectional layers: layer 2 reads 2*32 features, each layer has two cells.
    assert count_parameters(RNNSpec(cell="lstm", units=32, layers=2, bidirectional=True), 28) == 2 * 7808 + 2 * 4 * (
        64 * 32 + 32 * 32 + 32
    )
    for cell, keras_layer in [("lstm", keras.layers.LSTM), ("gru", keras.layers.GRU), ("rnn", keras.layers.SimpleRNN)]:
        reference = keras_layer(32)
        reference.build((None, 28, 28))
        spec = RNNSpec(cell=cell, units=32, implementation="keras")
        assert count_parameters(spec, 28) == reference.count_params() == variable_count(build_rnn(spec, 28))


@pytest.mark.parametrize("cell", cells.CELLS)
@pytest.mark.parametrize("shape", [dict(layers=3, residual=True), dict(layers=2, bidirectional=True)])
def test_static_equals_dynamic_for_stacks_and_bidirectional(cell, shape):
    static = build_rnn(RNNSpec(cell=cell, units=H, mode="static", seed=3, **shape), F)
    dynamic = build_rnn(RNNSpec(cell=cell, units=H, mode="dynamic", seed=3, **shape), F)
    assert_all_close(static.get_weights(), dynamic.get_weights())  # same seed, same weights
    x = random_inputs(1)
    static_run = run_with_gradients(static, x, training=True)
    dynamic_run = run_with_gradients(dynamic, x, compiled=True, training=True)
    assert static_run[0].shape == (B, T, H * (2 if shape.get("bidirectional") else 1))
    assert all(np.abs(g.numpy()).max() > 0 for g in static_run[2])
    assert_all_close(static_run, dynamic_run)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("mode", ["static", "dynamic"])
def test_keras_implementation_equals_unroll(cell, mode):
    """Same seed, same initial weights: Keras's layers and Unroll's agree, which checks both wirings."""
    shape = dict(layers=2, bidirectional=True, residual=True)
    ours = build_rnn(RNNSpec(cell=cell, units=H, mode=mode, seed=4, **shape), F)
    theirs = build_rnn(RNNSpec(cell=cell, units=H, mode=mode, implementation="keras", seed=4, **shape), F)
    assert_all_close(ours.get_weights(), theirs.get_weights())
    kwargs = dict(sequence_length=tf.constant(LENGTHS)) if mode == "dynamic" else {}
    ours_run = run_with_gradients(ours, random_inputs(2), **kwargs)
    theirs_run = run_with_gradients(theirs, random_inputs(2), **kwargs)
    assert_all_close(ours_run, theirs_run)
    assert type(ours_run[1][0][0]) is type(theirs_run[1][0][0]) is cells.CELL_CLASSES[cell].state_type


@pytest.mark.parametrize("cell", cells.CELLS)
def test_bidirectional_respects_lengths(cell):
    """Each direction equals its cell run alone on the example cut to its length (backward: reversed)."""
    layer = build_rnn(RNNSpec(cell=cell, units=H, mode="dynamic", bidirectional=True, seed=5), F)
    forward, backward = layer.cores
    x = random_inputs(3)
    outputs, [(state_fw, state_bw)] = layer(x, sequence_length=tf.constant(LENGTHS))
    assert outputs.shape == (B, T, 2 * H)
    for b, length in enumerate(LENGTHS):
        np.testing.assert_array_equal(outputs[b, length:].numpy(), 0.0)
        if length == 0:
            continue
        example = x[b : b + 1, :length]
        fw_outputs, fw_state = dynamic_unroll(forward, example)
        bw_outputs, bw_state = dynamic_unroll(backward, example[:, ::-1])
        np.testing.assert_allclose(outputs[b, :length, :H], fw_outputs[0], **TOL)
        np.testing.assert_allclose(outputs[b, :length, H:], bw_outputs[0, ::-1], **TOL)
        assert_all_close([s[b] for s in state_fw], [s[0] for s in fw_state])
        assert_all_close([s[b] for s in state_bw], [s[0] for s in bw_state])


def test_residual_adds_each_layers_inputs_from_layer_two_and_keeps_padding_zero():
    x, lengths = random_inputs(4), tf.constant(LENGTHS)
    spec = RNNSpec(cell="gru", units=H, layers=2, mode="dynamic", seed=6)
    first_layer_outputs, _ = build_rnn(dataclasses.replace(spec, layers=1), F)(x, sequence_length=lengths)
    plain, plain_states = build_rnn(spec, F)(x, sequence_length=lengths)
    residual, residual_states = build_rnn(dataclasses.replace(spec, residual=True), F)(x, sequence_length=lengths)
    np.testing.assert_allclose(residual, plain + first_layer_outputs, **TOL)
    assert not np.allclose(residual, plain, atol=1e-3)
    assert_all_close(residual_states, plain_states)
    for b, length in enumerate(LENGTHS):
        np.testing.assert_array_equal(residual[b, length:].numpy(), 0.0)


def test_dropout_only_in_training():
    x = random_inputs(5)
    spec = RNNSpec(cell="lstm", units=H, layers=2, seed=7)
    reference, _ = build_rnn(spec, F)(x, training=True)
    dropped = build_rnn(dataclasses.replace(spec, keep_prob=0.5), F)
    inference, _ = dropped(x, training=False)
    np.testing.assert_allclose(inference, reference, **TOL)  # same cell weights; dropout off
    training_a, _ = dropped(x, training=True)
    training_b, _ = dropped(x, training=True)
    assert not np.allclose(training_a, reference, atol=1e-3)
    assert not np.allclose(training_a, training_b, atol=1e-3)  # a fresh mask each call


def test_same_seed_same_weights_other_seed_other_weights():
    spec = RNNSpec(cell="sru", units=H, layers=2, bidirectional=True, seed=11)
    first, again = build_rnn(spec, F).get_weights(), build_rnn(spec, F).get_weights()
    other = build_rnn(dataclasses.replace(spec, seed=12), F).get_weights()
    assert_all_close(first, again)
    assert not np.allclose(first[0], other[0])
    # The two directions and the two layers are not copies of each other.
    assert not np.allclose(first[0], first[2])


def test_final_states_structure():
    layer = build_rnn(RNNSpec(cell="lstm", units=H, layers=2, bidirectional=True, mode="dynamic"), F)
    outputs, states = layer(random_inputs(), sequence_length=tf.constant(LENGTHS))
    assert isinstance(states, list)
    assert len(states) == 2
    for fw, bw in states:
        assert isinstance(fw, cells.LSTMState)
        assert isinstance(bw, cells.LSTMState)
        assert fw.hidden.shape == bw.cell.shape == (B, H)
    # The last layer's forward hidden state is its output at each example's last step.
    for b, length in enumerate(LENGTHS):
        if length:
            np.testing.assert_allclose(states[-1][0].hidden[b], outputs[b, length - 1, :H], **TOL)


@pytest.mark.parametrize("mode, kwargs", [("static", {}), ("dynamic", dict(sequence_length=tf.constant(LENGTHS)))])
def test_trains_with_keras_optimizer_inside_tf_function(mode, kwargs):
    layer = build_rnn(RNNSpec(cell="lstm", units=H, mode=mode, keep_prob=0.9, seed=8), F)
    readout = tf.Variable(tf.random.stateless_normal([H, 1], seed=[1, 1]))
    optimizer = keras.optimizers.Adam(0.05)
    x, target = random_inputs(6), tf.constant([[1.0], [-1.0], [0.0], [0.5]])
    variables = layer.trainable_variables

    @tf.function
    def train_step():
        with tf.GradientTape() as tape:
            _, states = layer(x, training=True, **kwargs)
            loss = tf.reduce_mean((tf.matmul(states[-1].hidden, readout) - target) ** 2)
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss

    before = [v.numpy() for v in variables]
    losses = [float(train_step()) for _ in range(30)]
    assert losses[-1] < 0.5 * losses[0]
    assert all(not np.allclose(a, v.numpy()) for a, v in zip(before, variables))


@pytest.mark.parametrize("cell", cells.CELLS)
def test_a_static_stack_traces_inside_a_tf_function(cell):
    """Training traces the model: every layer must hand the next one a known number of steps."""
    layer = build_rnn(RNNSpec(cell=cell, units=H, layers=2, mode="static"), F)
    outputs = tf.function(lambda x: layer(x, training=True)[0])(random_inputs(1))
    assert outputs.shape == (B, T, H)


# --- one vocabulary, one set of rules: the library's and the run config's agree ------------------

# Every value of every option a layer-level rule reads or refuses.
LAYER_CHOICES = {
    "cell": cells.CELLS,
    "activation": cells.ACTIVATIONS,
    "implementation": IMPLEMENTATIONS,
    "layers": (1, 2),
    "residual": (False, True),
    "mode": MODES,
    "swap_memory": (False, True),
    "variable_length": (False, True),
}
LAYER_COMBINATIONS = [dict(zip(LAYER_CHOICES, values)) for values in itertools.product(*LAYER_CHOICES.values())]


def refusal(problems):
    """The ValueError text the library raises for `problems` (the first one), or None."""
    return f"{problems[0][0]}: {problems[0][1]}" if problems else None


def test_the_library_and_the_run_config_use_the_same_names():
    assert set(cells.CELLS) == set(run_config.CELLS)
    assert set(MODES) == set(run_config.MODES)
    assert set(IMPLEMENTATIONS) == set(run_config.IMPLEMENTATIONS)
    assert set(cells.ACTIVATIONS) == set(run_config.ACTIVATIONS)
    assert set(cells.ACTIVATION_FUNCTIONS) == set(cells.ACTIVATIONS)
    # Each layer rule is about a run config field, spelled the same.
    assert {rule.option for rule in rules.LAYER_RULES} <= set(run_config.RunConfig.model_fields)
    # The cells with a Keras peer are those the rules let take implementation='keras'.
    assert set(network._KERAS_LAYERS) == {
        cell for cell in cells.CELLS if not rules.layer_problems({"cell": cell, "implementation": "keras"})
    }


def test_the_library_and_the_run_config_refuse_every_layer_combination_alike():
    """Same (field, message) pairs, same order; on the series task no config-level rule applies to these."""
    refused = 0
    for values in LAYER_COMBINATIONS:
        config = {"name": "rules", "task": "series", "max_steps": 1, **values}
        assert rules.layer_problems(values) == run_config.combination_problems(config), values
        refused += bool(rules.layer_problems(values))
    assert 0 < refused < len(LAYER_COMBINATIONS)
    # Every rule refuses some combination.
    fired = {problem for values in LAYER_COMBINATIONS for problem in rules.layer_problems(values)}
    assert fired == {(rule.option, rule.message) for rule in rules.LAYER_RULES}


def test_spec_make_cell_and_unrolling_refuse_exactly_what_the_rules_refuse():
    for values in LAYER_COMBINATIONS:
        if values["variable_length"]:  # a call argument (sequence_length), not part of the spec
            continue
        options = {name: value for name, value in values.items() if name != "variable_length"}
        try:
            RNNSpec(units=H, **options)
            raised = None
        except ValueError as error:
            raised = str(error)
        assert raised == refusal(rules.layer_problems(values)), values
    for cell, activation in itertools.product(cells.CELLS, cells.ACTIVATIONS):
        expected = refusal(rules.layer_problems({"cell": cell, "activation": activation}))
        if expected is None:
            cells.make_cell(cell, H, activation=activation)
        else:
            with pytest.raises(ValueError) as refused:
                cells.make_cell(cell, H, activation=activation)
            assert str(refused.value) == expected
    expected = refusal(rules.layer_problems({"mode": "static", "variable_length": True}))
    with pytest.raises(ValueError) as refused:
        static_unroll(cells.make_cell("gru", H), random_inputs(), sequence_length=tf.constant(LENGTHS))
    assert str(refused.value) == expected
