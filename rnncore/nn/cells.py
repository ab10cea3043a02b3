"""Recurrent cells, one time step each: basic RNN, LSTM, GRU and SRU.

Every cell is a `StepCore` (see `rnncore.nn.core`): it computes one step
`(input_t, state) -> (output_t, next_state)`, split in two so that the unroll functions
can keep the time loop lean:

* `project_inputs(inputs)` does everything that depends on the inputs alone, for all
  time steps at once (one matrix product `x W + b` over `[..., F]`, whatever the
  leading dimensions are, e.g. `[T, B, F]`).
* `step(projection_t, state)` does the recurrent part only: one matrix product with
  the recurrent kernel per step (none for the SRU) and the elementwise gate math.

`cell(input_t, state)` is the plain one-step form: `step(project_inputs(input_t), state)`.

The SRU is also a `SequenceCore`: its `unroll_sequence(inputs, initial_state,
sequence_length=None)` computes the whole sequence at once, which the unroll functions
then use instead. Its recurrence is elementwise, so it runs as one XLA-compiled loop
(with a hand-written backward pass) in both unrolling modes; see `SRUCell.unroll_sequence`.

Weight layouts follow Keras (`kernel` is `[F, G*H]`, `recurrent_kernel` `[H, G*H]`,
gate blocks side by side in Keras's order), so Keras weights load unchanged and a cell
built with the same initializers and seeds starts from the same weights as Keras's.
Notation follows Keras: `h_tm1`, `c_tm1` are the previous hidden and cell states.

Every state is a named tuple with a `hidden` field holding the step's output, so the
last output of any cell is `final_state.hidden`.
"""

from __future__ import annotations

import functools
import math
import os
from typing import NamedTuple

import keras
import tensorflow as tf

from rnncore.nn import fused
from rnncore.nn.core import HandDifferentiatedCore, SequenceCore, StepCore, masked_update
from rnncore.nn.rules import refuse_layer_problems

# The basic RNN's activations by name (the names are ACTIVATIONS).
ACTIVATION_FUNCTIONS = {"tanh": tf.tanh, "relu": tf.nn.relu}
ACTIVATIONS = tuple(ACTIVATION_FUNCTIONS)


class RNNState(NamedTuple):
    hidden: tf.Tensor


class LSTMState(NamedTuple):
    hidden: tf.Tensor
    cell: tf.Tensor


class LSTMSaved(NamedTuple):
    """What an LSTM step keeps for its backward pass: the step's derivatives, computed while it runs."""

    gate_factors: tf.Tensor  # d z / d(c_t, c_t, c_t, h_t) per gate block i, f, c, o: [B, 4H]
    output_factor: tf.Tensor  # d c_t contributed per unit of d h_t: o * (1 - tanh(c_t)^2), [B, H]
    forget: tf.Tensor  # sigmoid(f) = d c_t / d c_tm1, [B, H]


class GRUState(NamedTuple):
    hidden: tf.Tensor


class GRUSaved(NamedTuple):
    """What a GRU step keeps for its backward pass: every gradient of the step is d h_t times one of these."""

    projection_factors: tf.Tensor  # d (x_t W + b_in) per unit of d h_t, blocks z, r, n: [B, 3H]
    recurrent_factors: tf.Tensor  # d (h_tm1 U + b_rec) per unit of d h_t: [B, 3H]
    carry: tf.Tensor  # d h_t / d h_tm1 outside the recurrent product: the update gate z, [B, H]


class SRUState(NamedTuple):
    hidden: tf.Tensor
    cell: tf.Tensor


def sigmoid_grad(sigmoid, d_sigmoid):
    """`d_sigmoid * sigmoid * (1 - sigmoid)` in one op: the gradient through `sigmoid = tf.sigmoid(x)`."""
    return tf.raw_ops.SigmoidGrad(y=sigmoid, dy=d_sigmoid)


def tanh_grad(tanh, d_tanh):
    """`d_tanh * (1 - tanh^2)` in one op: the gradient through `tanh = tf.tanh(x)`."""
    return tf.raw_ops.TanhGrad(y=tanh, dy=d_tanh)


def project(inputs, kernel, bias=None):
    """`inputs @ kernel + bias` over the last axis of `inputs`, any leading shape, one matmul."""
    if inputs.shape.rank == 2:
        flat = inputs
    else:
        flat = tf.reshape(inputs, [-1, inputs.shape[-1]])
    out = tf.matmul(flat, kernel)
    if bias is not None:
        out = tf.nn.bias_add(out, bias)
    if inputs.shape.rank != 2:
        out = tf.reshape(out, tf.concat([tf.shape(inputs)[:-1], [out.shape[-1]]], axis=0))
        out.set_shape(inputs.shape[:-1].concatenate([kernel.shape[-1]]))
    return out


class Cell(keras.layers.Layer, StepCore):
    """Base class: a Keras layer that is a `StepCore` (one recurrent step, input projection hoisted out).

    Subclasses define `state_type`, `build`, `project_inputs` and `step`.
    """

    state_type: type  # the cell's named state tuple

    def __init__(self, units: int, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        if units < 1:
            raise ValueError(f"units must be a positive integer, got {units}")
        self.units = int(units)
        self.seed = int(seed)

    def _seeded(self, initializer_cls, offset, **kwargs):
        """A Keras initializer whose integer seed makes it deterministic (same seed, same values)."""
        return initializer_cls(seed=self.seed + offset, **kwargs)

    def initial_state(self, batch_size, dtype=tf.float32):
        """The zero state for a batch, as this cell's named state tuple."""
        zeros = tf.zeros(tf.stack([batch_size, self.units]), dtype=dtype)
        return self.state_type(*([zeros] * len(self.state_type._fields)))

    def call(self, input_t, state):
        """One full step from a raw input `[B, F]`: `step(project_inputs(input_t), state)`."""
        return self.step(self.project_inputs(input_t), state)


class BasicRNNCell(Cell):
    """Elman RNN (Keras's SimpleRNNCell)::

        h_t = act(x_t W + b + h_tm1 U)        act = tanh (default) or relu
        output_t = h_t

    `project_inputs` computes `x W + b`; `step` adds `h_tm1 U` and applies `act`.
    """

    state_type = RNNState

    def __init__(self, units, activation="tanh", seed=0, **kwargs):
        super().__init__(units, seed=seed, **kwargs)
        if activation not in ACTIVATION_FUNCTIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        self.activation_name = activation
        self._activation = ACTIVATION_FUNCTIONS[activation]

    def build(self, input_shape):
        n_in, h = input_shape[-1], self.units
        self.kernel = self.add_weight((n_in, h), self._seeded(keras.initializers.GlorotUniform, 0), name="kernel")
        self.recurrent_kernel = self.add_weight(
            (h, h), self._seeded(keras.initializers.Orthogonal, 1), name="recurrent_kernel"
        )
        self.bias = self.add_weight((h,), "zeros", name="bias")

    def project_inputs(self, inputs):
        return project(inputs, self.kernel, self.bias)

    def step(self, projection_t, state):
        h = self._activation(projection_t + tf.matmul(state.hidden, self.recurrent_kernel))
        return h, RNNState(h)


class LSTMCell(Cell, HandDifferentiatedCore):
    """LSTM without peepholes (Keras's LSTMCell; gate blocks in order i, f, c, o)::

        [i, f, g, o] = x_t W + b + h_tm1 U
        c_t = sigmoid(f) * c_tm1 + sigmoid(i) * tanh(g)
        h_t = sigmoid(o) * tanh(c_t)
        output_t = h_t

    Initialisation as Keras: W Glorot uniform, U orthogonal, b zeros except the forget
    block at 1 (`unit_forget_bias`).

    Its backward pass is written out for `rnncore.nn.unroll` (`backward_step`): the
    forward step also computes the step's derivatives (`LSTMSaved`), off the sequential
    path, so that going back through a step is three elementwise products, a sum and a
    concatenation before the recurrent product.
    """

    state_type = LSTMState
    saved_type = LSTMSaved

    def build(self, input_shape):
        n_in, h = input_shape[-1], self.units
        self.kernel = self.add_weight((n_in, 4 * h), self._seeded(keras.initializers.GlorotUniform, 0), name="kernel")
        self.recurrent_kernel = self.add_weight(
            (h, 4 * h), self._seeded(keras.initializers.Orthogonal, 1), name="recurrent_kernel"
        )

        def unit_forget_bias(shape, dtype=None):
            return tf.concat([tf.zeros([h]), tf.ones([h]), tf.zeros([2 * h])], axis=0)

        self.bias = self.add_weight((4 * h,), unit_forget_bias, name="bias")

    def input_weights(self):
        return self.kernel, self.bias

    def project_inputs(self, inputs):
        return project(inputs, self.kernel, self.bias)

    def recurrent_weights(self):
        return self.recurrent_kernel, None

    def forward_step(self, projection_t, recurrent_t, state):
        ops = _fused_ops(projection_t.dtype)
        if ops is None:
            return self.plain_forward_step(projection_t, recurrent_t, state)
        h, c, gate_factors, output_factor, forget = ops.unroll_lstm_forward_step(projection_t, recurrent_t, state.cell)
        return LSTMState(h, c), LSTMSaved(gate_factors, output_factor, forget)

    def plain_forward_step(self, projection_t, recurrent_t, state):
        """`forward_step` in TensorFlow's own ops (differentiable; what the fused kernel computes in one pass)."""
        z_i, z_f, z_g, z_o = tf.split(projection_t + recurrent_t, 4, axis=-1)
        i, f, g, o = tf.sigmoid(z_i), tf.sigmoid(z_f), tf.tanh(z_g), tf.sigmoid(z_o)
        c = f * state.cell + i * g
        cell_tanh = tf.tanh(c)
        # d z_i = d c_t * g * i (1 - i);  d z_f = d c_t * c_tm1 * f (1 - f);  d z_g = d c_t * i * (1 - g^2);
        # d z_o = d h_t * tanh(c_t) * o (1 - o): the factors of d c_t (or d h_t), known now.
        gate_factors = tf.concat(
            [sigmoid_grad(i, g), sigmoid_grad(f, state.cell), tanh_grad(g, i), sigmoid_grad(o, cell_tanh)], axis=-1
        )
        return LSTMState(o * cell_tanh, c), LSTMSaved(gate_factors, tanh_grad(cell_tanh, o), f)

    def backward_step(self, d_next_state, saved, state):
        """The step's gradient from d(h_t), d(c_t); h_tm1 reaches the step only through the recurrent product."""
        d_h = d_next_state.hidden
        ops = _fused_ops(d_h.dtype)
        if ops is not None:
            d_z, d_c_prev = ops.unroll_lstm_backward_step(d_h, d_next_state.cell, *saved)
            return d_z, d_z, LSTMState(None, d_c_prev)
        d_c = d_next_state.cell + d_h * saved.output_factor
        d_z = tf.concat([d_c, d_c, d_c, d_h], axis=-1) * saved.gate_factors
        return d_z, d_z, LSTMState(None, d_c * saved.forget)


def _fused_ops(dtype):
    """The fused step kernels (`rnncore.nn.fused`) for float32 on a machine without a GPU, or None: then
    TensorFlow's ops do the same math (on a GPU, a CPU kernel per step would copy every step's tensors
    between the devices)."""
    return fused.step_ops() if dtype == tf.float32 and not _gpu_visible() else None


@functools.cache
def _gpu_visible() -> bool:
    return bool(tf.config.list_logical_devices("GPU"))


class GRUCell(Cell, HandDifferentiatedCore):
    """GRU in Keras's default `reset_after=True` form (gate blocks in order z, r, h)::

        [xz, xr, xh] = x_t W + b_in
        [hz, hr, hh] = h_tm1 U + b_rec
        z = sigmoid(xz + hz);  r = sigmoid(xr + hr)
        candidate = tanh(xh + r * hh)
        h_t = z * h_tm1 + (1 - z) * candidate      (computed as candidate + z * (h_tm1 - candidate))
        output_t = h_t

    `bias` is `[2, 3H]`: row 0 is b_in, row 1 is b_rec (Keras's layout). Its backward pass
    is written out for `rnncore.nn.unroll`, as the LSTM's (`GRUSaved`).
    """

    state_type = GRUState
    saved_type = GRUSaved

    def build(self, input_shape):
        n_in, h = input_shape[-1], self.units
        self.kernel = self.add_weight((n_in, 3 * h), self._seeded(keras.initializers.GlorotUniform, 0), name="kernel")
        self.recurrent_kernel = self.add_weight(
            (h, 3 * h), self._seeded(keras.initializers.Orthogonal, 1), name="recurrent_kernel"
        )
        self.bias = self.add_weight((2, 3 * h), "zeros", name="bias")

    def input_weights(self):
        return self.kernel, self.bias[0]

    def project_inputs(self, inputs):
        return project(inputs, self.kernel, self.bias[0])

    def recurrent_weights(self):
        return self.recurrent_kernel, self.bias[1]

    def forward_step(self, projection_t, recurrent_t, state):
        ops = _fused_ops(projection_t.dtype)
        if ops is None:
            return self.plain_forward_step(projection_t, recurrent_t, state)
        h, *saved = ops.unroll_gru_forward_step(projection_t, recurrent_t, state.hidden)
        return GRUState(h), GRUSaved(*saved)

    def plain_forward_step(self, projection_t, recurrent_t, state):
        """`forward_step` in TensorFlow's own ops (differentiable; what the fused kernel computes in one pass)."""
        h_tm1, units = state.hidden, self.units
        x_zr, x_h = tf.split(projection_t, [2 * units, units], axis=-1)
        i_zr, i_h = tf.split(recurrent_t, [2 * units, units], axis=-1)
        z, r = tf.split(tf.sigmoid(x_zr + i_zr), 2, axis=-1)
        candidate = tf.tanh(x_h + r * i_h)
        h = candidate + z * (h_tm1 - candidate)
        # Per unit of d h_t: d z_pre = (h_tm1 - candidate) z (1 - z); d xh = (1 - z)(1 - candidate^2);
        # d r_pre = d xh * hh * r (1 - r); d hh = d xh * r.
        d_candidate = tanh_grad(candidate, 1.0 - z)
        d_update, d_reset = sigmoid_grad(z, h_tm1 - candidate), sigmoid_grad(r, d_candidate * i_h)
        saved = GRUSaved(
            tf.concat([d_update, d_reset, d_candidate], axis=-1),
            tf.concat([d_update, d_reset, d_candidate * r], axis=-1),
            z,
        )
        return GRUState(h), saved

    def backward_step(self, d_next_state, saved, state):
        d_h = d_next_state.hidden
        ops = _fused_ops(d_h.dtype)
        if ops is not None:
            d_projection, d_recurrent, d_h_prev = ops.unroll_gru_backward_step(d_h, *saved)
            return d_projection, d_recurrent, GRUState(d_h_prev)
        d_h3 = tf.concat([d_h] * 3, axis=-1)
        return d_h3 * saved.projection_factors, d_h3 * saved.recurrent_factors, GRUState(d_h * saved.carry)


class SRUCell(Cell, SequenceCore):
    """Simple Recurrent Unit (Lei et al. 2017, "Training RNNs as Fast as CNNs")::

        [z, f, r(, x')] = x_t W                  x' only with the highway on and F != H
        f = sigmoid(f + b_f);  r = sigmoid(r + b_r)
        c_t = f * c_tm1 + (1 - f) * z            the only sequential part
        h_t = r * tanh(c_t) + (1 - r) * x_t      highway (x' instead of x_t when F != H)
        h_t = r * tanh(c_t)                      highway off
        output_t = h_t

    Nothing but `c_t` depends on the previous step, so `project_inputs` computes, for all
    steps at once, the blocks `[f, (1 - f) * z, r(, (1 - r) * x)]` and `step` only does
    `c = f * c_tm1 + u` and `h = r * tanh(c) (+ highway)`.
    The recurrence needs only `cell`; the state also carries `hidden` (the last output).
    Official initialisation: W uniform in +-sqrt(3 / F), biases 0.
    """

    state_type = SRUState

    def __init__(self, units, highway=True, seed=0, **kwargs):
        super().__init__(units, seed=seed, **kwargs)
        self.highway = bool(highway)

    def build(self, input_shape):
        n_in, h = input_shape[-1], self.units
        self.projects_highway = self.highway and n_in != h
        blocks = 4 if self.projects_highway else 3
        limit = math.sqrt(3.0 / n_in)
        self.kernel = self.add_weight(
            (n_in, blocks * h),
            self._seeded(keras.initializers.RandomUniform, 0, minval=-limit, maxval=limit),
            name="kernel",
        )
        self.bias = self.add_weight((2 * h,), "zeros", name="bias")  # [b_f, b_r]

    def project_inputs(self, inputs):
        xw = tf.split(project(inputs, self.kernel), self.kernel.shape[-1] // self.units, axis=-1)
        z = xw[0]
        f, r = tf.split(tf.sigmoid(tf.concat(xw[1:3], axis=-1) + self.bias), 2, axis=-1)
        blocks = [f, (1.0 - f) * z, r]
        if self.highway:
            x = xw[3] if self.projects_highway else inputs
            blocks.append((1.0 - r) * x)
        return tf.concat(blocks, axis=-1)

    def unroll_sequence(self, inputs, initial_state, sequence_length=None):
        """The whole sequence `[B, T, F]` at once, for `rnncore.nn.unroll`: `(outputs [B, T, H], final SRUState)`.

        The same equations as `project_inputs` + `step`, computed the fast way: one matrix
        product per block for all steps, then the elementwise rest in `sru_recurrence`
        (one XLA-compiled loop forward, one backward). Static and dynamic unrolling both
        come here, so for the SRU the two modes run the same program: its only sequential
        part is elementwise, and a compiled loop is its fast form. (One graph copy per step
        costs a TensorFlow dispatch per elementwise op and step; compiled by XLA as T
        copies, the backward pass measured 4x slower than the loop at H=512.)
        With `sequence_length`, steps past an example's length carry the state unchanged
        and output zeros.
        """
        h = self.units
        z, f_pre, r_pre, *rest = [
            project(inputs, self.kernel[:, i * h : (i + 1) * h]) for i in range(self.kernel.shape[-1] // h)
        ]
        highway = (rest[0] if rest else inputs) if self.highway else None
        mask = None
        if sequence_length is not None:
            lengths = tf.cast(sequence_length, tf.int32)
            mask = tf.sequence_mask(lengths, tf.shape(inputs)[1])  # [B, T] bool
        outputs, cell = sru_recurrence(z, f_pre, r_pre, highway, mask, initial_state.cell, self.bias[:h], self.bias[h:])
        # The compiled loop loses the static shape; a static layer stacked on this one needs T.
        outputs = tf.ensure_shape(outputs, [inputs.shape[0], inputs.shape[1], h])
        if sequence_length is None:
            return outputs, SRUState(outputs[:, -1], cell)
        last = tf.gather(outputs, tf.maximum(lengths - 1, 0), axis=1, batch_dims=1)
        return outputs, SRUState(masked_update(lengths > 0, last, initial_state.hidden), cell)

    def step(self, projection_t, state):
        if self.highway:
            f, u, r, highway = tf.split(projection_t, 4, axis=-1)
        else:
            f, u, r = tf.split(projection_t, 3, axis=-1)
        c = f * state.cell + u
        h = r * tf.tanh(c)
        if self.highway:
            h = h + highway
        return h, SRUState(h, c)


def _time_loop(body, carry, outputs, steps, reverse=False):
    """A while loop running `carry, per_step_outputs = body(t, carry)` for t over `steps` (backwards if `reverse`).

    Returns `(carry, outputs stacked along axis 1)`.
    """
    arrays = [tf.TensorArray(carry.dtype, size=steps) for _ in range(outputs)]

    def loop_body(i, carry, arrays):
        t = steps - 1 - i if reverse else i
        carry, values = body(t, carry)
        return i + 1, carry, [array.write(t, value) for array, value in zip(arrays, values)]

    _, carry, arrays = tf.while_loop(
        lambda i, *_: i < steps, loop_body, (tf.constant(0), carry, arrays), maximum_iterations=steps
    )
    return carry, [tf.transpose(array.stack(), [1, 0, 2]) for array in arrays]


def _sru_step_gates(t, z, f_pre, r_pre, mask, b_f, b_r):
    """Step t's (f, r, keep, u, m): `c_t = keep * c_(t-1) + u`; past an example's length keep = 1, u = 0.

    `m` is step t's mask `[B]` (None without lengths), for `masked_update`.
    """
    f, r = tf.sigmoid(f_pre[:, t] + b_f), tf.sigmoid(r_pre[:, t] + b_r)
    m = None if mask is None else mask[:, t]
    keep, u = masked_update(m, f, 1.0), masked_update(m, (1.0 - f) * z[:, t], 0.0)
    return f, r, keep, u, m


def _sru_forward(z, f_pre, r_pre, highway, mask, c0, b_f, b_r):
    """(h [B, T, H], c_(t-1) for every t [B, T, H], final c [B, H]); all of a step's work in one loop body."""

    def body(t, c_prev):
        _, r, keep, u, m = _sru_step_gates(t, z, f_pre, r_pre, mask, b_f, b_r)
        c = keep * c_prev + u
        h = r * tf.tanh(c)
        if highway is not None:
            h += (1.0 - r) * highway[:, t]
        return c, (masked_update(m, h, 0.0), c_prev)

    c, (h, c_prevs) = _time_loop(body, c0, 2, tf.shape(z)[1])
    return h, c_prevs, c


def _sru_backward(d_h, d_c, z, f_pre, r_pre, highway, mask, b_f, b_r, c_prevs):
    """Gradients for `_sru_forward`'s inputs, one step at a time from the last; d_c is dL/d(final c)."""

    def body(t, d_c):
        f, r, keep, u, m = _sru_step_gates(t, z, f_pre, r_pre, mask, b_f, b_r)
        c_prev = c_prevs[:, t]
        k = tf.tanh(keep * c_prev + u)
        d_ht = masked_update(m, d_h[:, t], 0.0)
        d_c += d_ht * r * (1.0 - k * k)  # dL/dc_t in full
        d_u = masked_update(m, d_c, 0.0)
        d_f_pre = d_u * (c_prev - z[:, t]) * f * (1.0 - f)
        d_z = d_u * (1.0 - f)
        if highway is None:
            d_r_pre, d_highway = d_ht * k * r * (1.0 - r), []
        else:
            d_r_pre, d_highway = d_ht * (k - highway[:, t]) * r * (1.0 - r), [d_ht * (1.0 - r)]
        return keep * d_c, [d_z, d_f_pre, d_r_pre] + d_highway

    d_c0, grads = _time_loop(body, d_c, 3 if highway is None else 4, tf.shape(z)[1], reverse=True)
    d_z, d_f_pre, d_r_pre = grads[:3]
    return (
        d_z,
        d_f_pre,
        d_r_pre,
        grads[3] if highway is not None else None,
        d_c0,
        tf.reduce_sum(d_f_pre, axis=[0, 1]),
        tf.reduce_sum(d_r_pre, axis=[0, 1]),
    )


_sru_forward_xla = tf.function(_sru_forward, jit_compile=True)
_sru_backward_xla = tf.function(_sru_backward, jit_compile=True)


def sru_recurrence(z, f_pre, r_pre, highway, mask, c0, b_f, b_r):
    """The SRU's elementwise part over batch-major `[B, T, H]` blocks: `(h for all steps, final c)`.

    `f_pre`, `r_pre` are the gate pre-activations without their biases `b_f`, `b_r`;
    `highway` is None (no highway) or the highway input; `mask` None or `[B, T]` (bool).
    Forward and backward each run as one XLA-compiled loop with all of a step's work fused
    into its body; the gradient is written out by hand, so no per-step activations cross
    between TensorFlow and XLA. Examples are independent, so the batch is cut into one
    shard per CPU core, which TensorFlow runs in parallel.
    """
    batch = z.shape[0]
    shards = min(os.cpu_count() or 1, batch or 1)
    if shards == 1:
        return _sru_shard(z, f_pre, r_pre, highway, mask, c0, b_f, b_r)
    sizes = [batch // shards + (i < batch % shards) for i in range(shards)]
    split = lambda t: [None] * shards if t is None else tf.split(t, sizes, axis=0)
    parts = [_sru_shard(*args, b_f, b_r) for args in zip(*map(split, (z, f_pre, r_pre, highway, mask, c0)))]
    return tuple(tf.concat(list(pieces), axis=0) for pieces in zip(*parts))


def _sru_shard(z, f_pre, r_pre, highway, mask, c0, b_f, b_r):
    optional = [t for t in (highway, mask) if t is not None]

    @tf.custom_gradient
    def run(z, f_pre, r_pre, c0, b_f, b_r, *optional):
        highway_ = optional[0] if highway is not None else None
        mask_ = optional[-1] if mask is not None else None
        # The gradient is `grad`'s alone: TensorFlow must not try to differentiate the XLA call.
        h, c_prevs, cell = _sru_forward_xla(
            *[None if t is None else tf.stop_gradient(t) for t in (z, f_pre, r_pre, highway_, mask_, c0, b_f, b_r)]
        )

        def grad(d_h, d_cell):
            d_h = tf.zeros_like(h) if d_h is None else d_h
            d_cell = tf.zeros_like(c0) if d_cell is None else d_cell
            d_z, d_f, d_r, d_hw, d_c0, d_bf, d_br = _sru_backward_xla(
                d_h, d_cell, z, f_pre, r_pre, highway_, mask_, b_f, b_r, c_prevs
            )
            return (
                [d_z, d_f, d_r, d_c0, d_bf, d_br]
                + ([d_hw] if highway is not None else [])
                + ([None] if mask is not None else [])
            )

        return (h, cell), grad

    return run(z, f_pre, r_pre, c0, b_f, b_r, *optional)


# The cells by name: the library's cell names are CELLS.
CELL_CLASSES = {"rnn": BasicRNNCell, "lstm": LSTMCell, "gru": GRUCell, "sru": SRUCell}
CELLS = tuple(CELL_CLASSES)


def _check_cell_name(cell: str) -> None:
    if cell not in CELL_CLASSES:
        raise ValueError(f"cell must be one of {CELLS}, got {cell!r}")


def make_cell(cell: str, units: int, activation: str = "tanh", sru_highway: bool = True, seed: int = 0, name=None):
    """The cell called `cell` (one of CELLS); each option only reaches the cell it applies to.

    An option the cell does not take (a relu LSTM) is refused by `rnncore.nn.rules`.
    """
    _check_cell_name(cell)
    refuse_layer_problems({"cell": cell, "activation": activation})
    if cell == "rnn":
        return BasicRNNCell(units, activation=activation, seed=seed, name=name)
    if cell == "sru":
        return SRUCell(units, highway=sru_highway, seed=seed, name=name)
    return CELL_CLASSES[cell](units, seed=seed, name=name)


def cell_parameter_count(cell: str, input_size: int, units: int, sru_highway: bool = True) -> int:
    """Closed-form number of weights of one cell (equals its variables' total size)."""
    _check_cell_name(cell)
    n, h = input_size, units
    if cell == "rnn":
        return n * h + h * h + h
    if cell == "lstm":
        return 4 * (n * h + h * h + h)
    if cell == "gru":
        return 3 * (n * h + h * h + 2 * h)
    return (4 if sru_highway and n != h else 3) * n * h + 2 * h  # sru
