"""Unrolling a cell over time: static (a Python loop, one cell copy per step) or dynamic (tf.while_loop).

Both functions take batch-major inputs `[B, T, F]` and return `(outputs [B, T, H], final_state)`.
A *core* follows the protocol of `rnncore.nn.core`: a `StepCore` (`project_inputs`,
`step`, `initial_state`; any object with these methods will do) is stepped through time
here; a `SequenceCore` (the SRU) computes the whole sequence itself, in both modes.

For the same weights, both functions give the same outputs, final state and gradients.
"""

from __future__ import annotations

from typing import NamedTuple

import tensorflow as tf

from rnncore.nn.core import HandDifferentiatedCore, SequenceCore, masked_update
from rnncore.nn.rules import refuse_layer_problems

# The unrolling modes, by name (`unroll`).
MODES = ("static", "dynamic")


def static_time_steps(inputs) -> int:
    """The number of time steps of `inputs [B, T, F]`, which static unrolling needs as a Python int."""
    steps = inputs.shape[1]
    if steps is None:
        raise ValueError(
            "static unrolling needs the number of time steps known when the graph is built "
            f"(inputs have shape {inputs.shape}); use mode='dynamic' for a variable number of steps"
        )
    return steps


def _prepare(core, inputs, initial_state):
    inputs = tf.convert_to_tensor(inputs)
    if inputs.shape.rank != 3:
        raise ValueError(f"inputs must be [batch, time, features], got shape {inputs.shape}")
    if initial_state is None:
        initial_state = core.initial_state(tf.shape(inputs)[0], dtype=inputs.dtype)
    return inputs, initial_state


def static_unroll(core, inputs, initial_state=None, sequence_length=None):
    """Unroll `core` over a fixed number of time steps with a Python loop (TF1 `static_rnn`).

    Traced in a `tf.function`, the graph holds one copy of the step per time step::

        projections = core.project_inputs(inputs)          # all steps: one matrix product
        state = initial_state
        for t in range(T):                                  # T is a Python int
            outputs[t], state = core.step(projections[:, t], state)
        return stack(outputs, axis=1), state

    `sequence_length` is refused (ValueError, by `rnncore.nn.rules`): static unrolling
    would run the padding as input; use `dynamic_unroll` for variable lengths.
    """
    refuse_layer_problems({"mode": "static", "variable_length": sequence_length is not None})
    given_state = initial_state is not None
    inputs, state = _prepare(core, inputs, initial_state)
    steps = static_time_steps(inputs)
    if isinstance(core, SequenceCore):
        return core.unroll_sequence(inputs, state)
    if isinstance(core, HandDifferentiatedCore):
        return _hand_differentiated_unroll(core, inputs, state, given_state, static=True)
    projections = tf.unstack(core.project_inputs(inputs), num=steps, axis=1)
    outputs = []
    for projection_t in projections:
        output_t, state = core.step(projection_t, state)
        outputs.append(output_t)
    return tf.stack(outputs, axis=1), state


def dynamic_unroll(core, inputs, initial_state=None, sequence_length=None, swap_memory=False, parallel_iterations=32):
    """Unroll `core` with `tf.while_loop`: one copy of the step in the graph, whatever T (TF1 `dynamic_rnn`).

    ::

        projections = core.project_inputs(inputs)          # all steps: one matrix product
        state = initial_state
        t = 0
        while t < T:                                        # T may be unknown until run time
            output, next_state = core.step(projections[:, t], state)
            if sequence_length is given:                    # masked_update, per example b
                output[b] = output[b] if t < sequence_length[b] else 0
                next_state[b] = next_state[b] if t < sequence_length[b] else state[b]
            outputs[t], state = output, next_state
            t += 1
        return stack(outputs, axis=1), state

    With `sequence_length [B]` (values in [0, T]), outputs past an example's length are
    zeros and its state is carried through unchanged, so the final state is the state at
    the example's own last step. `swap_memory` lets the loop move the activations kept for
    the backward pass to host memory.
    """
    given_state = initial_state is not None
    inputs, initial_state = _prepare(core, inputs, initial_state)
    if isinstance(core, SequenceCore):
        return core.unroll_sequence(inputs, initial_state, sequence_length)
    # swap_memory moves what TensorFlow's autodiff keeps for the backward pass: the hand-written pass keeps
    # its own arrays, so a run asking for swapping takes the autodiff path (same results).
    if isinstance(core, HandDifferentiatedCore) and not swap_memory:
        return _hand_differentiated_unroll(
            core,
            inputs,
            initial_state,
            given_state,
            static=False,
            sequence_length=sequence_length,
            parallel_iterations=parallel_iterations,
        )
    time_major = tf.transpose(inputs, [1, 0, 2])
    steps = tf.shape(time_major)[0]
    projections = core.project_inputs(time_major)
    projections_ta = tf.TensorArray(projections.dtype, size=steps, element_shape=projections.shape[1:])
    projections_ta = projections_ta.unstack(projections)
    outputs_ta = tf.TensorArray(inputs.dtype, size=steps)
    lengths = None if sequence_length is None else tf.cast(sequence_length, tf.int32)  # [B]

    def body(t, state, outputs_ta):
        output, next_state = core.step(projections_ta.read(t), state)
        valid = None if lengths is None else t < lengths  # [B]
        output, next_state = masked_update(valid, output, 0.0), masked_update(valid, next_state, state)
        return t + 1, next_state, outputs_ta.write(t, output)

    _, final_state, outputs_ta = tf.while_loop(
        lambda t, *_: t < steps,
        body,
        (tf.constant(0), initial_state, outputs_ta),
        parallel_iterations=parallel_iterations,
        swap_memory=swap_memory,
        maximum_iterations=steps,
    )
    outputs = tf.transpose(outputs_ta.stack(), [1, 0, 2])
    return outputs, final_state


def reverse_in_time(x, sequence_length=None):
    """Reverse `x [B, T, ...]` along time; with lengths, each example within its own length (tf.reverse_sequence)."""
    if sequence_length is None:
        return tf.reverse(x, axis=[1])
    return tf.reverse_sequence(x, tf.cast(sequence_length, tf.int32), seq_axis=1, batch_axis=0)


def unroll(core, inputs, mode, initial_state=None, sequence_length=None, swap_memory=False):
    """`static_unroll` or `dynamic_unroll`, by `mode` (one of MODES)."""
    if mode == "static":
        return static_unroll(core, inputs, initial_state, sequence_length)
    if mode == "dynamic":
        return dynamic_unroll(core, inputs, initial_state, sequence_length, swap_memory=swap_memory)
    raise ValueError(f"mode must be {' or '.join(map(repr, MODES))}, got {mode!r}")


# --- unrolling with a hand-written backward pass (HandDifferentiatedCore) ---------------------------


class _Weights(NamedTuple):
    """A hand-differentiated core's weights in its step's layout; either bias may be None."""

    input_kernel: tf.Tensor
    input_bias: tf.Tensor | None
    kernel: tf.Tensor
    bias: tf.Tensor | None

    def tensors(self):
        return [w for w in self if w is not None]

    def like(self, tensors):
        """The same structure filled from `tensors` (what `tensors()` gave, or their gradients)."""
        tensors = iter(tensors)
        return _Weights(*[None if w is None else next(tensors) for w in self])


def _hand_differentiated_unroll(
    core,
    inputs,
    initial_state,
    given_state,
    static,
    sequence_length=None,
    parallel_iterations=32,
):
    """`(outputs [B, T, H], final_state)` of a `HandDifferentiatedCore`, with its backward pass run here.

    The same loop as the plain unroll (static: one step copy per time step; dynamic: one
    while loop), wrapped in `tf.custom_gradient`: the backward pass is a second loop of
    the same kind, from the last step, calling the core's `backward_step`. Without
    `given_state` (the zero state) the initial state gets no gradient.
    """
    time_major = tf.transpose(inputs, [1, 0, 2])  # [T, B, F]
    # Tensors, not variables: the custom gradient below returns the weights' gradients itself.
    weights = _Weights(
        *[None if w is None else tf.convert_to_tensor(w) for w in core.input_weights() + core.recurrent_weights()]
    )
    state_type = type(initial_state)
    lengths = None if sequence_length is None else tf.cast(sequence_length, tf.int32)
    loop = _StaticLoop(core) if static else _DynamicLoop(core, parallel_iterations)
    differentiable_state = list(initial_state) if given_state else []
    count = len(weights.tensors())

    @tf.custom_gradient
    def run(x, *args):
        # The gradient is `grad`'s alone: TensorFlow must not differentiate the loops themselves.
        x, args = tf.stop_gradient(x), [tf.stop_gradient(a) for a in args]
        weights_ = weights.like(args[:count])
        state = state_type(*args[count:]) if given_state else initial_state
        outputs, final = loop.forward(x, weights_, state, lengths)

        def grad(d_outputs, *d_final):
            d_final = state_type(*[tf.zeros_like(s) if d is None else d for s, d in zip(final, d_final)])
            d_outputs = tf.zeros_like(outputs) if d_outputs is None else d_outputs
            d_x, d_weights, d_initial = loop.backward(d_outputs, d_final, given_state)
            return [
                _first_order_only(d) for d in [d_x, *d_weights.tensors(), *(list(d_initial) if given_state else [])]
            ]

        return (outputs, *final), grad

    outputs, *final = run(time_major, *weights.tensors(), *differentiable_state)
    return tf.transpose(outputs, [1, 0, 2]), state_type(*final)


def _first_order_only(gradient):
    """The gradient, refusing with a clear message to be differentiated again (the backward pass is
    written out for first order only; autodiff through it would be silently wrong)."""
    return tf.raw_ops.PreventGradient(
        input=gradient,
        message="second-order gradients through Unroll's LSTM or GRU unrolling are not supported "
        "(its backward pass is written out for first order); use implementation='keras' for them",
    )


def _affine(x, kernel, bias):
    """`x @ kernel + bias` for a matrix `x` (bias may be None)."""
    out = tf.matmul(x, kernel)
    return out if bias is None else tf.nn.bias_add(out, bias)


def _with_ones(x):
    """`x` with a column of ones appended: `_with_ones(x) @ [kernel; bias] = x @ kernel + bias`.

    So one product gives both the kernel's and the bias's gradient (its last row): a sum
    over the rows of the gradient as its own op measured 3x slower than the extra row.
    """
    return tf.concat([x, tf.ones(tf.concat([tf.shape(x)[:-1], [1]], axis=0), x.dtype)], axis=-1)


def _input_product(weights):
    """The input kernel with the input bias (if any) as an extra last row, for inputs `_with_ones`."""
    if weights.input_bias is None:
        return weights.input_kernel
    return tf.concat([weights.input_kernel, weights.input_bias[tf.newaxis]], axis=0)


def _split_input_gradient(d_product, weights):
    """`(d_input_kernel, d_input_bias or None)` from the gradient of `_input_product(weights)`."""
    if weights.input_bias is None:
        return d_product, None
    return d_product[:-1], d_product[-1]


def _weight_gradients(x, d_out, has_bias):
    """`(d_kernel, d_bias or None)` of `x @ kernel + bias` for matrices, as one product (see `_with_ones`)."""
    if not has_bias:
        return tf.matmul(x, d_out, transpose_a=True), None
    d_both = tf.matmul(_with_ones(x), d_out, transpose_a=True)
    return d_both[:-1], d_both[-1]


def _backward_step(core, kernel_t, d_output, d_state, saved, start, valid, need_start_gradient=True):
    """One step of the backward pass: `(d_projection, d_recurrent, d_start_state)`.

    `d_state` is the gradient with respect to the step's next state (from later steps);
    where `valid` is False (past an example's length) the state passed through unchanged
    and the step's output was zero, so the gradient passes through unchanged too.
    `kernel_t` is the recurrent kernel transposed, by `_transposed`: `d @ kernel_t` measured
    1.2x (H=128) to 1.8x (H=512) faster than `tf.matmul(d, kernel, transpose_b=True)`.
    """
    d_next = d_state._replace(hidden=d_state.hidden + d_output)
    d_next = masked_update(valid, d_next, 0.0)
    d_projection, d_recurrent, d_start = core.backward_step(d_next, saved, start)
    if need_start_gradient:
        through_kernel = tf.matmul(d_recurrent, kernel_t)
        direct = d_start.hidden  # None: the hidden state reaches the step only through the kernel
        d_start = d_start._replace(hidden=through_kernel if direct is None else direct + through_kernel)
        d_start = masked_update(valid, d_start, d_state)
    return d_projection, d_recurrent, d_start


def _transposed(matrix):
    """`matrix` transposed, as a tensor of its own that each product reads as it is.

    Without the Snapshot (a copy Grappler does not look through), Grappler's arithmetic
    optimizer folds a Transpose that feeds a MatMul into the product's `transpose_b`, which
    oneDNN runs slower (see `_backward_step`). Profiled at H=512, the folded products took
    2.27 ms each, where unfolded the same products and the weight-gradient ones average
    1.35 ms; the LSTM's static train step went from 0.98 of Keras's to 0.84-0.87 without the
    fold (B=128, T=28, `python -m rnncore.bench --filter cell=lstm`, an AVX-512 Xeon).
    """
    return tf.raw_ops.Snapshot(input=tf.transpose(matrix))


def _sum(tensors):
    tensors = [t for t in tensors if t is not None]
    return (tensors[0] if len(tensors) == 1 else tf.add_n(tensors)) if tensors else None


class _StaticLoop:
    """Python loops: one copy of the step (forward) and of its gradient (backward) per time step.

    Each step does its own input product, and in the backward pass its own input and weight
    gradient products (summed at the end): none of them waits on the recurrence, so
    TensorFlow runs them beside it on the other core. Measured against one product for all
    steps before and after the loop: LSTM train step 0.81 -> 0.64 of Keras's at H=128 and
    0.92 -> 0.81 at H=32 (B=128, T=28, `python -m rnncore.bench`).
    """

    def __init__(self, core):
        self.core = core

    def forward(self, x, weights, state, lengths):
        self.weights = weights
        # With a column of ones, one product per step gives x_t W + b and, backward, both their gradients.
        self.x_steps = tf.unstack(x if weights.input_bias is None else _with_ones(x), num=x.shape[0], axis=0)
        kernel_in = _input_product(weights)
        self.starts, self.saved, outputs = [], [], []
        for x_t in self.x_steps:
            self.starts.append(state)
            recurrent = _affine(state.hidden, weights.kernel, weights.bias)
            state, saved_t = self.core.forward_step(tf.matmul(x_t, kernel_in), recurrent, state)
            self.saved.append(saved_t)
            outputs.append(state.hidden)
        return tf.stack(outputs, axis=0), state

    def backward(self, d_outputs, d_state, need_initial_gradient):
        core, w = self.core, self.weights
        kernel_t, input_kernel_t = _transposed(w.kernel), _transposed(w.input_kernel)
        d_outputs = tf.unstack(d_outputs, num=len(self.starts), axis=0)
        d_x, d_input, d_kernel, d_bias = [], [], [], []
        for t in reversed(range(len(self.starts))):
            start = self.starts[t]
            d_projection, d_recurrent, d_state = _backward_step(
                core, kernel_t, d_outputs[t], d_state, self.saved[t], start, None, t > 0 or need_initial_gradient
            )
            d_x.append(tf.matmul(d_projection, input_kernel_t))
            d_input.append(tf.matmul(self.x_steps[t], d_projection, transpose_a=True))
            for sums, d in zip((d_kernel, d_bias), _weight_gradients(start.hidden, d_recurrent, w.bias is not None)):
                sums.append(d)
        d_weights = _Weights(*_split_input_gradient(_sum(d_input), w), _sum(d_kernel), _sum(d_bias))
        return tf.stack(d_x[::-1], axis=0), d_weights, d_state


class _DynamicLoop:
    """`tf.while_loop`s: one copy of the step (forward) and of its gradient (backward), whatever T.

    The input projections for all steps are one product before the loop; the backward
    loop adds each step's recurrent-kernel gradient to a running sum, beside the
    sequential part, and the input weights' gradient is one product after it.
    """

    def __init__(self, core, parallel_iterations):
        self.core = core
        self.options = dict(parallel_iterations=parallel_iterations)

    def forward(self, x, weights, state, lengths):
        core = self.core
        steps = tf.shape(x)[0]
        x_in = x if weights.input_bias is None else _with_ones(x)
        self.x_flat = tf.reshape(x_in, [-1, x_in.shape[-1]])
        projections = tf.matmul(self.x_flat, _input_product(weights))
        projections = tf.reshape(projections, tf.concat([tf.shape(x)[:2], [projections.shape[-1]]], axis=0))
        projections_ta = tf.TensorArray(x.dtype, size=steps, element_shape=projections.shape[1:])
        projections_ta = projections_ta.unstack(projections)
        # Read again by the backward loop: eager TensorArrays must not clear what was read.
        new_array = lambda: tf.TensorArray(x.dtype, size=steps, clear_after_read=False)
        arrays = ([new_array() for _ in state], [new_array() for _ in core.saved_type._fields], new_array())

        def body(t, state, arrays):
            starts, saved, outputs = arrays
            recurrent = _affine(state.hidden, weights.kernel, weights.bias)
            next_state, saved_t = core.forward_step(projections_ta.read(t), recurrent, state)
            valid = None if lengths is None else t < lengths
            output = masked_update(valid, next_state.hidden, 0.0)
            next_state = masked_update(valid, next_state, state)
            starts = [a.write(t, s) for a, s in zip(starts, state)]
            saved = [a.write(t, s) for a, s in zip(saved, saved_t)]
            return t + 1, next_state, (starts, saved, outputs.write(t, output))

        _, final, (self.starts, self.saved, outputs) = tf.while_loop(
            lambda t, *_: t < steps, body, (tf.constant(0), state, arrays), maximum_iterations=steps, **self.options
        )
        self.steps, self.weights, self.lengths, self.x_shape = steps, weights, lengths, tf.shape(x)
        return outputs.stack(), final

    def backward(self, d_outputs, d_state, need_initial_gradient):
        core, w, steps, lengths = self.core, self.weights, self.steps, self.lengths
        kernel_t = _transposed(w.kernel)
        d_outputs_ta = tf.TensorArray(d_outputs.dtype, size=steps, element_shape=d_outputs.shape[1:])
        d_outputs_ta = d_outputs_ta.unstack(d_outputs)
        state_type, saved_type = type(d_state), core.saved_type
        has_bias = w.bias is not None
        sums = [tf.zeros_like(w.kernel)] + ([tf.zeros_like(w.bias)] if has_bias else [])

        def body(i, d_state, sums, d_projections):
            t = steps - 1 - i
            start = state_type(*[a.read(t) for a in self.starts])
            saved = saved_type(*[a.read(t) for a in self.saved])
            valid = None if lengths is None else t < lengths
            d_projection, d_recurrent, d_state = _backward_step(
                core, kernel_t, d_outputs_ta.read(t), d_state, saved, start, valid
            )
            dk, db = _weight_gradients(start.hidden, d_recurrent, has_bias)
            sums = [sums[0] + dk] + ([sums[1] + db] if has_bias else [])
            return i + 1, d_state, sums, d_projections.write(t, d_projection)

        _, d_initial, sums, d_projections = tf.while_loop(
            lambda i, *_: i < steps,
            body,
            (tf.constant(0), d_state, sums, tf.TensorArray(d_outputs.dtype, size=steps)),
            maximum_iterations=steps,
            **self.options,
        )
        d_projections = d_projections.stack()
        d_projections = tf.reshape(d_projections, [-1, d_projections.shape[-1]])
        d_x = tf.matmul(d_projections, _transposed(w.input_kernel))
        d_input = _split_input_gradient(tf.matmul(self.x_flat, d_projections, transpose_a=True), w)
        d_weights = _Weights(*d_input, sums[0], sums[1] if has_bias else None)
        return tf.reshape(d_x, self.x_shape), d_weights, d_initial
