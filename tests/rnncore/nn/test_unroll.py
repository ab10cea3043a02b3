"""static_unroll and dynamic_unroll: closed-form toy core, equality of the two, sequence lengths, graph shape."""

from typing import NamedTuple

import numpy as np
import pytest
import tensorflow as tf

from rnncore.nn import cells
from rnncore.nn.core import HandDifferentiatedCore, SequenceCore, StepCore, masked_update
from rnncore.nn.unroll import dynamic_unroll, reverse_in_time, static_unroll, unroll

B, T, F, H = 4, 6, 3, 5
TOL = dict(rtol=1e-5, atol=1e-5)
LENGTHS = [6, 2, 0, 4]


class CountState(NamedTuple):
    hidden: tf.Tensor  # running sum of the inputs
    steps: tf.Tensor  # steps taken


class SumCore:
    """A toy core with a closed form: output_t = initial + x_1 + ... + x_t (times 2 after its projection).

    It does not subclass StepCore: any object with the step methods unrolls.
    """

    def initial_state(self, batch_size, dtype=tf.float32):
        return CountState(tf.zeros(tf.stack([batch_size, F]), dtype), tf.zeros(tf.stack([batch_size, 1]), dtype))

    def project_inputs(self, inputs):
        return 2.0 * inputs

    def step(self, projection_t, state):
        total = state.hidden + projection_t
        return total, CountState(total, state.steps + 1.0)


def random_inputs(seed=0, features=F, batch=B, steps=T):
    return tf.constant(np.random.default_rng(seed).normal(size=(batch, steps, features)), tf.float32)


@pytest.mark.parametrize("unroll_fn", [static_unroll, dynamic_unroll, tf.function(dynamic_unroll)])
def test_toy_core_closed_form(unroll_fn):
    x = random_inputs()
    initial = CountState(tf.fill([B, F], 10.0), tf.zeros([B, 1]))
    outputs, state = unroll_fn(SumCore(), x, initial)
    expected = 10.0 + 2.0 * np.cumsum(x.numpy(), axis=1)
    np.testing.assert_allclose(outputs, expected, **TOL)
    np.testing.assert_allclose(state.hidden, expected[:, -1], **TOL)
    np.testing.assert_array_equal(state.steps.numpy(), np.full((B, 1), T))


@pytest.mark.parametrize("unroll_fn", [dynamic_unroll, tf.function(dynamic_unroll)])
def test_toy_core_closed_form_with_lengths(unroll_fn):
    x = random_inputs()
    outputs, state = unroll_fn(SumCore(), x, sequence_length=tf.constant(LENGTHS))
    running = 2.0 * np.cumsum(x.numpy(), axis=1)
    for b, length in enumerate(LENGTHS):
        np.testing.assert_allclose(outputs[b, :length], running[b, :length], **TOL)
        np.testing.assert_array_equal(outputs[b, length:].numpy(), 0.0)
        np.testing.assert_allclose(state.hidden[b], running[b, length - 1] if length else np.zeros(F), **TOL)
        assert state.steps[b, 0] == length


def built_cell(name, seed=0):
    cell = cells.make_cell(name, H, seed=seed)
    cell.build((None, None, F))
    # Non-zero biases make the tests stronger (they start at zero or one).
    cell.bias.assign(np.random.default_rng(seed).normal(size=cell.bias.shape, scale=0.5).astype("float32"))
    return cell


def outputs_and_gradients(cell, unroll_fn, x, **kwargs):
    with tf.GradientTape() as tape:
        tape.watch(x)
        outputs, state = unroll_fn(cell, x, **kwargs)
        # A loss that touches every output and every part of the final state.
        loss = tf.reduce_sum(outputs * tf.sin(tf.range(outputs.shape[-1], dtype=tf.float32)))
        loss += sum(tf.reduce_sum(s**2) for s in state)
    gradients = tape.gradient(loss, [x] + cell.trainable_variables)
    return outputs, state, gradients


@pytest.mark.parametrize("name", cells.CELLS)
def test_static_equals_dynamic_outputs_states_gradients(name):
    cell, x = built_cell(name), random_inputs(1)
    static = outputs_and_gradients(cell, static_unroll, x)
    dynamic = outputs_and_gradients(cell, tf.function(dynamic_unroll), x)
    np.testing.assert_allclose(static[0], dynamic[0], **TOL)
    for a, b in zip(static[1], dynamic[1]):
        np.testing.assert_allclose(a, b, **TOL)
    assert len(static[2]) == len(cell.trainable_variables) + 1
    for a, b in zip(static[2], dynamic[2]):
        assert np.abs(a.numpy()).max() > 0  # every gradient reaches its variable
        np.testing.assert_allclose(a, b, **TOL)


@pytest.mark.parametrize("name", cells.CELLS)
def test_variable_lengths_zero_padding_and_truncated_final_state(name):
    cell, x = built_cell(name), random_inputs(2)
    outputs, state = dynamic_unroll(cell, x, sequence_length=tf.constant(LENGTHS, tf.int64))
    for b, length in enumerate(LENGTHS):
        np.testing.assert_array_equal(outputs[b, length:].numpy(), 0.0)
        if length == 0:  # nothing ran: the final state is the initial (zero) state
            for got in state:
                np.testing.assert_array_equal(got[b].numpy(), 0.0)
            continue
        alone_outputs, alone_state = dynamic_unroll(cell, x[b : b + 1, :length])
        np.testing.assert_allclose(outputs[b, :length], alone_outputs[0], **TOL)
        for got, expected in zip(state, alone_state):
            np.testing.assert_allclose(got[b], expected[0], **TOL)
        assert np.abs(outputs[b, :length].numpy()).min() > 0


def test_lengths_gradients_ignore_the_padding():
    cell, x = built_cell("lstm"), random_inputs(3)
    _, _, gradients = outputs_and_gradients(cell, dynamic_unroll, x, sequence_length=tf.constant(LENGTHS))
    input_gradient = gradients[0].numpy()
    for b, length in enumerate(LENGTHS):
        np.testing.assert_array_equal(input_gradient[b, length:], 0.0)
        assert length == 0 or np.abs(input_gradient[b, :length]).min() > 0


def test_swap_memory_and_initial_state_are_honoured():
    cell, x = built_cell("gru"), random_inputs(4)
    initial = cells.GRUState(tf.constant(np.random.default_rng(5).normal(size=(B, H)), tf.float32))
    plain = static_unroll(cell, x, initial)
    swapped = tf.function(dynamic_unroll)(cell, x, initial, swap_memory=True)
    np.testing.assert_allclose(plain[0], swapped[0], **TOL)
    assert not np.allclose(plain[0], static_unroll(cell, x)[0], atol=1e-3)


def test_static_refuses_sequence_length():
    with pytest.raises(ValueError, match="variable_length: static unrolling needs every sequence of the same length"):
        static_unroll(built_cell("rnn"), random_inputs(), sequence_length=tf.constant(LENGTHS))


def test_static_refuses_unknown_number_of_steps():
    cell = built_cell("rnn")
    traced = tf.function(lambda x: static_unroll(cell, x), input_signature=[tf.TensorSpec([None, None, F])])
    with pytest.raises(ValueError, match="number of time steps known"):
        traced.get_concrete_function()
    # The dynamic loop takes it.
    dynamic = tf.function(lambda x: dynamic_unroll(cell, x), input_signature=[tf.TensorSpec([None, None, F])])
    assert dynamic(random_inputs(steps=9))[0].shape == (B, 9, H)


def test_unroll_refuses_unknown_mode_and_bad_rank():
    with pytest.raises(ValueError, match="mode must be 'static' or 'dynamic'"):
        unroll(built_cell("rnn"), random_inputs(), "eager")
    with pytest.raises(ValueError, match=r"inputs must be \[batch, time, features\]"):
        dynamic_unroll(built_cell("rnn"), tf.zeros([B, F]))


def graph_op_types(unroll_fn, cell, steps):
    traced = tf.function(lambda x: unroll_fn(cell, x)[0])
    graph = traced.get_concrete_function(tf.TensorSpec([B, steps, F])).graph
    return [op.type for op in graph.get_operations()]


def test_static_traces_one_cell_per_step_dynamic_one_loop():
    cell = built_cell("lstm")
    for steps in (5, 12):
        static_ops = graph_op_types(static_unroll, cell, steps)
        # Each step's copy does its own input product and its recurrent product.
        assert static_ops.count("MatMul") == 2 * steps
        assert "While" not in static_ops
        assert "StatelessWhile" not in static_ops
        dynamic_ops = graph_op_types(dynamic_unroll, cell, steps)
        assert dynamic_ops.count("MatMul") == 1  # the projection; the recurrent one is inside the loop body
        assert sum(op in ("While", "StatelessWhile") for op in dynamic_ops) == 1


def test_reverse_in_time_reverses_within_each_length():
    x = tf.reshape(tf.range(B * T, dtype=tf.float32), [B, T, 1]) + 1.0
    reversed_x = reverse_in_time(x, tf.constant(LENGTHS)).numpy()[..., 0]
    for b, length in enumerate(LENGTHS):
        row = x.numpy()[b, :, 0]
        np.testing.assert_array_equal(reversed_x[b], np.concatenate([row[:length][::-1], row[length:]]))
    np.testing.assert_array_equal(reverse_in_time(x).numpy(), x.numpy()[:, ::-1])


class StepByStep(StepCore):
    """A core's plain per-step form (project_inputs + step), hiding any whole-sequence fast path."""

    def __init__(self, core):
        self.core = core

    def initial_state(self, batch_size, dtype=tf.float32):
        return self.core.initial_state(batch_size, dtype)

    def project_inputs(self, inputs):
        return self.core.project_inputs(inputs)

    def step(self, projection_t, state):
        return self.core.step(projection_t, state)


@pytest.mark.parametrize("highway, input_size", [(True, F), (True, H), (False, F)])
@pytest.mark.parametrize(
    "unroll_fn, kwargs",
    [
        (static_unroll, {}),
        (tf.function(dynamic_unroll), {}),
        (dynamic_unroll, dict(sequence_length=tf.constant(LENGTHS))),
    ],
)
def test_sru_fast_path_equals_autodiff_of_its_steps(highway, input_size, unroll_fn, kwargs):
    """The SRU's compiled whole-sequence path and hand-written gradient against TensorFlow's autodiff of its steps."""
    cell = cells.SRUCell(H, highway=highway, seed=9)
    cell.build((None, None, input_size))
    cell.bias.assign(np.random.default_rng(9).normal(size=cell.bias.shape, scale=0.5).astype("float32"))
    x = random_inputs(9, features=input_size)
    initial = cells.SRUState(
        tf.constant(np.random.default_rng(10).normal(size=(B, H)), tf.float32),
        tf.constant(np.random.default_rng(11).normal(size=(B, H)), tf.float32),
    )

    def run(core):
        with tf.GradientTape() as tape:
            tape.watch([x, *initial])
            outputs, state = unroll_fn(core, x, initial, **kwargs)
            loss = tf.reduce_sum(outputs * tf.sin(tf.range(H, dtype=tf.float32))) + tf.reduce_sum(state.cell**2)
            loss += tf.reduce_sum(tf.cos(state.hidden))
        return outputs, state, tape.gradient(loss, [x, *initial, *cell.trainable_variables])

    fast, reference = run(cell), run(StepByStep(cell))
    zero_if_none = lambda g, like: tf.zeros_like(like) if g is None else g
    for a, b, like in zip(fast[2], reference[2], [x, *initial, *cell.trainable_variables]):
        np.testing.assert_allclose(zero_if_none(a, like), zero_if_none(b, like), **TOL)
    assert_all_close = lambda a, b: [np.testing.assert_allclose(u, v, **TOL) for u, v in zip(a, b)]
    assert_all_close([fast[0], *fast[1]], [reference[0], *reference[1]])
    assert all(np.abs(g.numpy()).max() > 0 for g in [fast[2][0], fast[2][2], *fast[2][3:]])


@pytest.mark.parametrize("name", ["lstm", "gru"])
@pytest.mark.parametrize("kernels", ["fused", "tensorflow"])
@pytest.mark.parametrize("given_state", [True, False])
@pytest.mark.parametrize(
    "unroll_fn, kwargs",
    [
        (static_unroll, {}),
        (tf.function(static_unroll), {}),
        (dynamic_unroll, {}),
        (tf.function(dynamic_unroll), dict(sequence_length=tf.constant(LENGTHS))),
    ],
)
def test_hand_written_backward_equals_autodiff_of_its_steps(name, kernels, given_state, unroll_fn, kwargs, request):
    """The LSTM's and GRU's own backward pass (HandDifferentiatedCore) against TensorFlow's autodiff of its plain steps:
    outputs, final state and the gradients of the inputs, the initial state and every weight; with the
    fused step kernels and with TensorFlow's ops (what runs where no C++ compiler is found)."""
    if kernels == "tensorflow":
        request.getfixturevalue("monkeypatch").setattr(cells, "_fused_ops", lambda dtype: None)
    else:
        request.getfixturevalue("fused_step_ops")
    cell = built_cell(name, seed=12)
    assert isinstance(cell, HandDifferentiatedCore)
    x = random_inputs(12)
    rng = np.random.default_rng(13)
    initial = cell.state_type(*[tf.constant(rng.normal(size=(B, H)), tf.float32) for _ in cell.state_type._fields])

    def run(core):
        with tf.GradientTape() as tape:
            tape.watch([x, *initial])
            outputs, state = unroll_fn(core, x, initial if given_state else None, **kwargs)
            loss = tf.reduce_sum(outputs * tf.sin(tf.range(H, dtype=tf.float32))) + tf.reduce_sum(state[-1] ** 2)
            loss += tf.reduce_sum(tf.cos(state.hidden))
        sources = [x, *initial, *cell.trainable_variables]
        gradients = [tf.zeros_like(s) if g is None else g for s, g in zip(sources, tape.gradient(loss, sources))]
        return [outputs, *state], gradients

    (fast, fast_gradients), (reference, reference_gradients) = run(cell), run(StepByStep(cell))
    for a, b in zip(fast + fast_gradients, reference + reference_gradients):
        np.testing.assert_allclose(a, b, **TOL)
    state_size = len(initial)
    assert all(np.abs(g.numpy()).max() > 0 for g in [fast_gradients[0], *fast_gradients[1 + state_size :]])
    assert (np.abs(fast_gradients[1].numpy()).max() > 0) == given_state  # the zero state gets no gradient


def test_cells_declare_the_core_protocol():
    for name in cells.CELLS:
        cell = cells.make_cell(name, H)
        assert isinstance(cell, StepCore)
        assert isinstance(cell, SequenceCore) == (name == "sru")  # only the SRU is unrolled as a whole
    assert not isinstance(StepByStep(cells.SRUCell(H)), SequenceCore)


def test_a_core_missing_part_of_the_protocol_cannot_be_made():
    class NoStep(StepCore):
        def initial_state(self, batch_size, dtype=tf.float32):
            return ()

        def project_inputs(self, inputs):
            return inputs

    class NoSequence(SequenceCore):
        def initial_state(self, batch_size, dtype=tf.float32):
            return ()

    for incomplete, missing in [(NoStep, "step"), (NoSequence, "unroll_sequence")]:
        with pytest.raises(TypeError, match=missing):
            incomplete()


def test_masked_update_keeps_old_values_where_the_mask_is_false():
    new, old = tf.fill([B, H], 5.0), tf.fill([B, H], -1.0)
    valid = tf.constant([True, False, True, False])
    np.testing.assert_array_equal(masked_update(valid, new, old).numpy()[:, 0], [5.0, -1.0, 5.0, -1.0])
    np.testing.assert_array_equal(masked_update(valid, new, 0.0).numpy()[:, 0], [5.0, 0.0, 5.0, 0.0])
    assert masked_update(None, new, old) is new
    # A state tuple, and a whole sequence with a [B, T] mask (broadcast over the units the same way).
    state = cells.LSTMState(new, 2.0 * new)
    kept = masked_update(valid, state, cells.LSTMState(old, old))
    assert isinstance(kept, cells.LSTMState)
    np.testing.assert_array_equal(kept.cell.numpy()[:, 0], [10.0, -1.0, 10.0, -1.0])
    sequence_mask = tf.sequence_mask(LENGTHS, T)
    masked = masked_update(sequence_mask, tf.ones([B, T, H]), 0.0).numpy()
    np.testing.assert_array_equal(masked.sum(axis=(1, 2)), np.array(LENGTHS) * H)


@pytest.mark.parametrize("name", ["lstm", "gru"])
@pytest.mark.parametrize("kernels", ["fused", "tensorflow"])
def test_second_order_gradients_are_refused_with_a_clear_message(name, kernels, request):
    """The written-out backward pass is first order: differentiating it again must fail loudly, never be wrong."""
    if kernels == "tensorflow":
        request.getfixturevalue("monkeypatch").setattr(cells, "_fused_ops", lambda dtype: None)
    cell, x = built_cell(name), random_inputs(3)
    with pytest.raises(LookupError, match="second-order gradients through Unroll's LSTM or GRU"):
        with tf.GradientTape() as outer:
            outer.watch(x)
            with tf.GradientTape() as inner:
                inner.watch(x)
                outputs, _ = static_unroll(cell, x)
                loss = tf.reduce_sum(outputs**2)
            gradient_norm = tf.reduce_sum(inner.gradient(loss, x) ** 2)
        outer.gradient(gradient_norm, x)


def matmul_names_run(function, *args, logdir):
    """The names of the MatMul ops TensorFlow ran for `function(*args)` (a tf.function), after Grappler's
    rewrites, read from a profiler trace: the graph as built does not show what Grappler made of it."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    function(*args)  # traced and optimised before the profile
    tf.profiler.experimental.start(str(logdir))
    function(*args)
    tf.profiler.experimental.stop()
    space = xplane_pb2.XSpace()
    space.ParseFromString(next(logdir.rglob("*.xplane.pb")).read_bytes())
    events = [(plane, event) for plane in space.planes for line in plane.lines for event in line.events]
    names = [plane.event_metadata[event.metadata_id].name for plane, event in events]
    return [name.rsplit(":", 1)[0] for name in names if name.endswith("MatMul")]


@pytest.mark.parametrize("mode", ["static", "dynamic"])
@pytest.mark.parametrize("name", ["lstm", "gru"])
def test_backward_products_read_the_transposed_kernels_as_they_are(name, mode, tmp_path):
    """Grappler must not fold the backward pass's transposed kernels into the products (`_transposed`):
    the folded products ran 1.7x slower at H=512. The control shows that the trace would see a fold."""
    folded = lambda names: [n for n in names if "FoldTransposeIntoMatMul" in n]
    a = tf.ones([8, 8])
    control = matmul_names_run(tf.function(lambda a: tf.matmul(a, tf.transpose(a)) + 1.0), a, logdir=tmp_path / "c")
    assert folded(control), control

    cell = built_cell(name)
    x = random_inputs(3)

    @tf.function
    def gradients(x):
        with tf.GradientTape() as tape:
            outputs, _ = unroll(cell, x, mode)
            loss = tf.reduce_sum(outputs**2)
        return tape.gradient(loss, cell.trainable_variables)

    names = matmul_names_run(gradients, x, logdir=tmp_path / "unroll")
    assert len(names) >= (4 * T if mode == "static" else 4), names  # products ran and were seen
    assert not folded(names), folded(names)
