"""The core protocol: what `rnncore.nn.unroll` needs from a recurrent cell (Sonnet's RNNCore and UnrolledRNN).

A *step core* (`StepCore`) computes one time step at a time, split in two so that the
unroll functions keep the time loop lean:

* `project_inputs(inputs)`: the input-only part of every step, for all steps at once
  (one matrix product over `[..., F]`, whatever the leading dimensions are);
* `step(projection_t, state) -> (output_t, next_state)`: the recurrent part of one step;
* `initial_state(batch_size, dtype)`: the state before the first step.

A *sequence core* (`SequenceCore`) computes the whole sequence itself, with
`unroll_sequence(inputs, initial_state, sequence_length=None) -> (outputs, final_state)`;
both unroll functions hand it the sequence instead of looping (the SRU is one).

Any object with the step methods unrolls (the loop only calls them); subclassing
`StepCore` makes the contract checked when the class is instantiated. Only a
`SequenceCore` subclass is unrolled as a whole sequence.

Variable lengths are masked in one place, `masked_update`: past an example's length its
outputs are zeros and its state is carried through unchanged.
"""

from __future__ import annotations

import abc

import tensorflow as tf


class StepCore(abc.ABC):
    """One recurrent step, with the input projection hoisted out of the time loop."""

    @abc.abstractmethod
    def initial_state(self, batch_size, dtype=tf.float32):
        """The state before the first step, for a batch of `batch_size`."""

    @abc.abstractmethod
    def project_inputs(self, inputs):
        """The input-only part of the step for inputs `[..., F]` (all time steps at once)."""

    @abc.abstractmethod
    def step(self, projection_t, state):
        """`(output_t, next_state)` from step t's projection and the previous state."""


class SequenceCore(abc.ABC):
    """A core that computes a whole sequence at once (both unrolling modes hand it the sequence)."""

    @abc.abstractmethod
    def initial_state(self, batch_size, dtype=tf.float32):
        """The state before the first step, for a batch of `batch_size`."""

    @abc.abstractmethod
    def unroll_sequence(self, inputs, initial_state, sequence_length=None):
        """`(outputs [B, T, H], final_state)` for inputs `[B, T, F]`.

        With `sequence_length [B]`, steps past an example's length output zeros and carry
        the state unchanged (as `masked_update` does for the unroll functions).
        """


def masked_update(mask, new, old):
    """`new` where `mask` holds and `old` elsewhere, per example (and step); `new` itself when `mask` is None.

    `mask` is boolean with `new`'s shape without its last (units) axis: `[B]` for one time
    step, `[B, T]` for a whole sequence; it is broadcast over the units here. `new` may be
    a tensor or a state (a nest of tensors, with `old` the same nest); `old` may also be a
    number, e.g. 0.0 for the zero outputs past an example's length.
    """
    if mask is None:
        return new
    mask = tf.expand_dims(tf.cast(mask, tf.bool), -1)

    def update(new_t, old_t):
        return tf.where(mask, new_t, tf.cast(old_t, new_t.dtype))

    if isinstance(old, (int, float)):
        return tf.nest.map_structure(lambda new_t: update(new_t, old), new)
    return tf.nest.map_structure(update, new, old)
