"""Each cell is checked against an independent reference: Keras's cells (RNN, LSTM, GRU) or NumPy (SRU)."""

import itertools
import math
import re

import keras
import numpy as np
import pytest
import tensorflow as tf

from rnncore.nn import cells
from rnncore.nn.unroll import dynamic_unroll, static_unroll

B, F, H = 3, 5, 4
TOL = dict(rtol=1e-5, atol=1e-5)

# Keras's gate blocks, in Keras's column order (keras/src/layers/rnn/lstm.py and gru.py).
KERAS_GATES = {"rnn": ["h"], "lstm": ["i", "f", "c", "o"], "gru": ["z", "r", "h"]}


def documented_gates(name):
    """The gate order rnncore.nn.cells documents, read from the cell's docstring ("gate blocks in order i, f, c, o")."""
    if name == "rnn":
        return ["h"]
    found = re.search(r"gate blocks in order ([a-z](?:, [a-z])*)", cells.CELL_CLASSES[name].__doc__)
    assert found, f"{name}'s docstring names no gate order"
    return found.group(1).split(", ")


def keras_cell(name, activation="tanh"):
    if name == "rnn":
        return keras.layers.SimpleRNNCell(H, activation=activation)
    if name == "lstm":
        return keras.layers.LSTMCell(H)
    return keras.layers.GRUCell(H, reset_after=True)


def randomize(layer, rng):
    """Give every weight of a built layer non-trivial random values (biases too)."""
    for variable in layer.weights:
        variable.assign(rng.uniform(-0.8, 0.8, size=variable.shape).astype("float32"))


def keras_to_unroll(name, kernel, recurrent_kernel, bias, order=None):
    """Map Keras's weights to rnncore's: Keras's gate blocks by name, laid out in `order` (default: the documented)."""
    order = documented_gates(name) if order is None else order

    def reorder(matrix):
        blocks = dict(zip(KERAS_GATES[name], np.split(matrix, len(KERAS_GATES[name]), axis=-1)))
        return np.concatenate([blocks[gate] for gate in order], axis=-1)

    return [reorder(kernel), reorder(recurrent_kernel), reorder(bias)]


def keras_states(name, state):
    return [state.hidden, state.cell] if name == "lstm" else [state.hidden]


@pytest.mark.parametrize("name, activation", [("rnn", "tanh"), ("rnn", "relu"), ("lstm", "tanh"), ("gru", "tanh")])
def test_cell_reproduces_keras_cell(name, activation):
    rng = np.random.default_rng(1)
    reference = keras_cell(name, activation)
    reference.build((None, F))
    randomize(reference, rng)
    cell = cells.make_cell(name, H, activation=activation)
    cell.build((None, F))
    assert [tuple(w.shape) for w in cell.weights] == [tuple(w.shape) for w in reference.weights]
    cell.set_weights(keras_to_unroll(name, *[w.numpy() for w in reference.weights]))

    state = cell.state_type(*[tf.constant(rng.normal(size=(B, H)), tf.float32) for _ in cell.state_type._fields])
    keras_state = keras_states(name, state)
    for _ in range(4):  # several chained steps, so states feed back
        x = tf.constant(rng.normal(size=(B, F)), tf.float32)
        expected_output, keras_state = reference(x, keras_state)
        keras_state = keras_state if isinstance(keras_state, (list, tuple)) else [keras_state]
        output, state = cell(x, state)
        assert isinstance(state, cell.state_type)
        np.testing.assert_allclose(output, expected_output, **TOL)
        for mine, theirs in zip(keras_states(name, state), keras_state):
            np.testing.assert_allclose(mine, theirs, **TOL)
    assert np.abs(output.numpy()).max() > 1e-2  # the comparison was not between zeros


@pytest.mark.parametrize("name", ["lstm", "gru"])
def test_only_the_documented_gate_order_reproduces_keras(name):
    """Keras's gate blocks laid out in every possible order: only the documented one matches Keras.

    So the comparison above would catch a cell that reads its gates in another order than it
    documents (or a documented order that is not Keras's).
    """
    rng = np.random.default_rng(4)
    reference = keras_cell(name)
    reference.build((None, F))
    randomize(reference, rng)
    weights = [w.numpy() for w in reference.weights]
    cell = cells.make_cell(name, H)
    cell.build((None, F))
    x = tf.constant(rng.normal(size=(B, F)), tf.float32)
    state = cell.state_type(*[tf.constant(rng.normal(size=(B, H)), tf.float32) for _ in cell.state_type._fields])
    expected = reference(x, keras_states(name, state))[0]

    matching = []
    for order in itertools.permutations(KERAS_GATES[name]):
        cell.set_weights(keras_to_unroll(name, *weights, order=list(order)))
        if np.allclose(cell(x, state)[0], expected, **TOL):
            matching.append(list(order))
    assert matching == [documented_gates(name)]


def test_gru_reset_after_differs_from_reset_before():
    """The GRU check above would pass for the wrong GRU variant only if the variants agreed; they do not."""
    rng = np.random.default_rng(2)
    before = keras.layers.GRUCell(H, reset_after=False)
    before.build((None, F))
    randomize(before, rng)
    cell = cells.GRUCell(H)
    cell.build((None, F))
    kernel, recurrent_kernel, bias = [w.numpy() for w in before.weights]
    cell.set_weights([kernel, recurrent_kernel, np.stack([bias, np.zeros_like(bias)])])
    x = tf.constant(rng.normal(size=(B, F)), tf.float32)
    h = tf.constant(rng.normal(size=(B, H)), tf.float32)
    assert not np.allclose(cell(x, cells.GRUState(h))[0], before(x, [h])[0], atol=1e-3)


def sru_reference(x, c0, W, b_f, b_r, highway):
    """SRU equations (Lei et al. 2017) in NumPy, one step at a time. x: [B, T, F]; returns h [B, T, H], c_T."""
    hidden = c0.shape[-1]
    sigmoid = lambda v: 1.0 / (1.0 + np.exp(-v))
    c, outputs = c0, []
    for t in range(x.shape[1]):
        x_t = x[:, t]
        xw = x_t @ W
        z, f, r = xw[:, :hidden], xw[:, hidden : 2 * hidden], xw[:, 2 * hidden : 3 * hidden]
        f, r = sigmoid(f + b_f), sigmoid(r + b_r)
        c = f * c + (1 - f) * z
        h = r * np.tanh(c)
        if highway:
            x_highway = xw[:, 3 * hidden :] if x.shape[-1] != hidden else x_t
            h = h + (1 - r) * x_highway
        outputs.append(h)
    return np.stack(outputs, axis=1), c


@pytest.mark.parametrize("highway", [True, False])
@pytest.mark.parametrize("input_size", [H, F])
@pytest.mark.parametrize("unroll_fn", [static_unroll, dynamic_unroll])
def test_sru_matches_numpy_reference(highway, input_size, unroll_fn):
    rng = np.random.default_rng(3)
    cell = cells.SRUCell(H, highway=highway)
    cell.build((None, None, input_size))
    blocks = 4 if highway and input_size != H else 3
    W = rng.normal(scale=0.7, size=(input_size, blocks * H)).astype("float32")
    b_f, b_r = rng.normal(size=(2, H)).astype("float32")
    cell.set_weights([W, np.concatenate([b_f, b_r])])
    x = rng.normal(size=(B, 6, input_size)).astype("float32")
    c0 = rng.normal(size=(B, H)).astype("float32")

    outputs, state = unroll_fn(cell, tf.constant(x), cells.SRUState(tf.zeros([B, H]), tf.constant(c0)))
    expected_outputs, expected_c = sru_reference(x, c0, W, b_f, b_r, highway)
    np.testing.assert_allclose(outputs, expected_outputs, **TOL)
    np.testing.assert_allclose(state.cell, expected_c, **TOL)
    np.testing.assert_allclose(state.hidden, expected_outputs[:, -1], **TOL)


def test_sru_highway_shapes_and_official_initialisation():
    projected = cells.SRUCell(H, seed=5)
    projected.build((None, None, 50))
    assert tuple(projected.kernel.shape) == (50, 4 * H)  # x' block for the highway since 50 != H
    limit = math.sqrt(3.0 / 50)
    kernel = projected.kernel.numpy()
    assert np.abs(kernel).max() <= limit
    assert np.abs(kernel).max() > 0.8 * limit
    assert np.abs(kernel.mean()) < 0.1 * limit  # uniform around 0, not [0, limit]
    np.testing.assert_array_equal(projected.bias.numpy(), np.zeros(2 * H))

    for highway, n_in in [(True, H), (False, 50)]:
        plain = cells.SRUCell(H, highway=highway)
        plain.build((None, None, n_in))
        assert tuple(plain.kernel.shape) == (n_in, 3 * H)


def test_lstm_initialisation_has_unit_forget_bias():
    cell = cells.LSTMCell(H)
    cell.build((None, F))
    np.testing.assert_array_equal(cell.bias.numpy(), np.concatenate([np.zeros(H), np.ones(H), np.zeros(2 * H)]))


@pytest.mark.parametrize("name", cells.CELLS)
def test_projection_for_all_steps_equals_one_step_at_a_time(name):
    """project_inputs over [T, B, F] (one matmul) gives what projecting each step alone gives."""
    cell = cells.make_cell(name, H)
    cell.build((None, None, F))
    x = tf.random.stateless_normal([7, B, F], seed=[1, 2])
    together = cell.project_inputs(x)
    assert together.shape[:2] == (7, B)
    for t in range(7):
        np.testing.assert_allclose(together[t], cell.project_inputs(x[t]), **TOL)


@pytest.mark.parametrize("name", cells.CELLS)
def test_same_seed_same_weights_and_counts(name):
    def weights(seed):
        cell = cells.make_cell(name, H, seed=seed)
        cell.build((None, None, F))
        return cell

    first, again, other = weights(7), weights(7), weights(8)
    for a, b, c in zip(first.weights, again.weights, other.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
        if "kernel" in a.name:  # biases start at constants whatever the seed
            assert not np.array_equal(a.numpy(), c.numpy())
    assert sum(int(np.prod(w.shape)) for w in first.weights) == cells.cell_parameter_count(name, F, H)


def test_initial_state_is_zeros_of_the_named_tuple():
    state = cells.LSTMCell(H).initial_state(3)
    assert state._fields == ("hidden", "cell")
    assert state.hidden.shape == (3, H)
    np.testing.assert_array_equal(state.cell.numpy(), np.zeros((3, H)))


def test_make_cell_refusals():
    with pytest.raises(ValueError, match="cell must be one of"):
        cells.make_cell("transformer", H)
    with pytest.raises(ValueError, match="activation: only the rnn cell takes an activation"):
        cells.make_cell("lstm", H, activation="relu")
    with pytest.raises(ValueError, match="activation must be one of"):
        cells.make_cell("rnn", H, activation="sigmoid")
    with pytest.raises(ValueError, match="units must be a positive integer"):
        cells.make_cell("gru", 0)
