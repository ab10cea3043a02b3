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

A *hand-differentiated step core* (`HandDifferentiatedCore`, a `StepCore`) whose
recurrence enters each step through one matrix product `state.hidden @ U (+ b)` also
writes its step's gradient out (`forward_step` keeps what `backward_step` needs). The
unroll functions then run the backward pass themselves, still one step copy per time step
(static) or one while loop (dynamic), and take the recurrent weights' gradient as one
matrix product over all steps (the LSTM and GRU are such cores).

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


class HandDifferentiatedCore(StepCore):
    """A step core whose step's gradient is written out, so that unrolling can skip TensorFlow's autodiff.

    The step must be affine in its inputs and its previous hidden state before anything
    else: `forward_step(x_t @ W + b, h_tm1 @ U + b_rec, state)`, with `(W, b)` from
    `input_weights` and `(U, b_rec)` from `recurrent_weights`. The unroll functions then do
    the products themselves and can group them across steps (forward and backward), and
    each step's backward is the few ops `backward_step` writes rather than TensorFlow's
    generic gradient of every forward op (the gradient of a split is a concatenation, of
    each activation its own op, of each weight use one product, summed at the end).

    `forward_step` and `backward_step` must not read variables: what they need comes in
    as arguments (the unroll functions hand the weights to `tf.custom_gradient`
    explicitly). `backward_step` must be linear in `d_next_state`: masking relies on a
    zero gradient giving zero gradients. A step's output is `next_state.hidden`.
    """

    saved_type: type  # the named tuple `forward_step` returns as `saved`

    @abc.abstractmethod
    def input_weights(self):
        """`(kernel [F, G], bias [G] or None)`: a step's input projection is `x_t @ kernel + bias`."""

    @abc.abstractmethod
    def recurrent_weights(self):
        """`(kernel [H, G'], bias [G'] or None)`: a step's recurrent product is `state.hidden @ kernel + bias`."""

    @abc.abstractmethod
    def forward_step(self, projection_t, recurrent_t, state):
        """`(next_state, saved)`: one step from its input projection and recurrent product; `saved` (a
        `saved_type`) holds the tensors `backward_step` needs besides the states (the unroll functions keep
        every step's starting state)."""

    @abc.abstractmethod
    def backward_step(self, d_next_state, saved, state):
        """`(d_projection_t, d_recurrent_t, d_state)` from the gradient of the loss with respect to the next state.

        `state` is the state the step started from; `d_state` leaves out the path through
        `recurrent_t` (the unroll functions add `d_recurrent_t @ U^T` to its hidden part;
        a `hidden` of None means no other path). A step that adds its recurrent product to
        its projection returns the same tensor twice.
        """

    def plain_forward_step(self, projection_t, recurrent_t, state):
        """`forward_step` in ops TensorFlow can differentiate, for `step`; `forward_step` itself by default.

        A core whose `forward_step` uses a kernel without a registered gradient overrides this."""
        return self.forward_step(projection_t, recurrent_t, state)

    def step(self, projection_t, state):
        """The plain step (what autodiff differentiates): the recurrent product, then `plain_forward_step`."""
        kernel, bias = self.recurrent_weights()
        recurrent = tf.matmul(state.hidden, kernel)
        if bias is not None:
            recurrent = tf.nn.bias_add(recurrent, bias)
        next_state, _ = self.plain_forward_step(projection_t, recurrent, state)
        return next_state.hidden, next_state


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
