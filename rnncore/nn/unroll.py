"""Unrolling a cell over time: static (a Python loop, one cell copy per step) or dynamic (tf.while_loop).

Both functions take batch-major inputs `[B, T, F]` and return `(outputs [B, T, H], final_state)`.
A *core* follows the protocol of `rnncore.nn.core`: a `StepCore` (`project_inputs`,
`step`, `initial_state`; any object with these methods will do) is stepped through time
here; a `SequenceCore` (the SRU) computes the whole sequence itself, in both modes.

For the same weights, both functions give the same outputs, final state and gradients.
"""

from __future__ import annotations

import tensorflow as tf

from rnncore.nn.core import SequenceCore, masked_update
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
    inputs, state = _prepare(core, inputs, initial_state)
    steps = static_time_steps(inputs)
    if isinstance(core, SequenceCore):
        return core.unroll_sequence(inputs, state)
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
    inputs, initial_state = _prepare(core, inputs, initial_state)
    if isinstance(core, SequenceCore):
        return core.unroll_sequence(inputs, initial_state, sequence_length)
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
