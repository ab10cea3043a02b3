"""Recurrent cells, one time step each: basic RNN, LSTM, GRU and SRU.

Every cell computes one step `(input_t, state) -> (output_t, next_state)`, but it is
split in two so that the unroll functions can keep the time loop lean:

* `project_inputs(inputs)` does everything that depends on the inputs alone, for all
  time steps at once (one matrix product `x W + b` over `[..., F]`, whatever the
  leading dimensions are, e.g. `[T, B, F]`).
* `step(projection_t, state)` does the recurrent part only: one matrix product with
  the recurrent kernel per step (none for the SRU) and the elementwise gate math.

`cell(input_t, state)` is the plain one-step form: `step(project_inputs(input_t), state)`.

Weight layouts follow Keras (`kernel` is `[F, G*H]`, `recurrent_kernel` `[H, G*H]`,
gate blocks side by side in Keras's order), so Keras weights load unchanged and a cell
built with the same initializers and seeds starts from the same weights as Keras's.
Notation follows Keras: `h_tm1`, `c_tm1` are the previous hidden and cell states.

Every state is a named tuple with a `hidden` field holding the step's output, so the
last output of any cell is `final_state.hidden`.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import keras
import tensorflow as tf

CELLS = ("rnn", "lstm", "gru", "sru")
ACTIVATIONS = {"tanh": tf.tanh, "relu": tf.nn.relu}


class RNNState(NamedTuple):
    hidden: tf.Tensor


class LSTMState(NamedTuple):
    hidden: tf.Tensor
    cell: tf.Tensor


class GRUState(NamedTuple):
    hidden: tf.Tensor


class SRUState(NamedTuple):
    hidden: tf.Tensor
    cell: tf.Tensor


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


class Cell(keras.layers.Layer):
    """Base class: one recurrent step, with the input projection hoisted out of the loop.

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

    def project_inputs(self, inputs):
        raise NotImplementedError

    def step(self, projection_t, state):
        raise NotImplementedError

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
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        self.activation_name = activation
        self._activation = ACTIVATIONS[activation]

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


class LSTMCell(Cell):
    """LSTM without peepholes (Keras's LSTMCell; gate blocks in order i, f, c, o)::

        [i, f, g, o] = x_t W + b + h_tm1 U
        c_t = sigmoid(f) * c_tm1 + sigmoid(i) * tanh(g)
        h_t = sigmoid(o) * tanh(c_t)
        output_t = h_t

    Initialisation as Keras: W Glorot uniform, U orthogonal, b zeros except the forget
    block at 1 (`unit_forget_bias`).
    """

    state_type = LSTMState

    def build(self, input_shape):
        n_in, h = input_shape[-1], self.units
        self.kernel = self.add_weight(
            (n_in, 4 * h), self._seeded(keras.initializers.GlorotUniform, 0), name="kernel"
        )
        self.recurrent_kernel = self.add_weight(
            (h, 4 * h), self._seeded(keras.initializers.Orthogonal, 1), name="recurrent_kernel"
        )

        def unit_forget_bias(shape, dtype=None):
            return tf.concat([tf.zeros([h]), tf.ones([h]), tf.zeros([2 * h])], axis=0)

        self.bias = self.add_weight((4 * h,), unit_forget_bias, name="bias")

    def project_inputs(self, inputs):
        return project(inputs, self.kernel, self.bias)

    def step(self, projection_t, state):
        h_tm1, c_tm1 = state
        z = projection_t + tf.matmul(h_tm1, self.recurrent_kernel)
        i, f, g, o = tf.split(z, 4, axis=-1)
        c = tf.sigmoid(f) * c_tm1 + tf.sigmoid(i) * tf.tanh(g)
        h = tf.sigmoid(o) * tf.tanh(c)
        return h, LSTMState(h, c)


class GRUCell(Cell):
    """GRU in Keras's default `reset_after=True` form (gate blocks in order z, r, h)::

        [xz, xr, xh] = x_t W + b_in
        [hz, hr, hh] = h_tm1 U + b_rec
        z = sigmoid(xz + hz);  r = sigmoid(xr + hr)
        candidate = tanh(xh + r * hh)
        h_t = z * h_tm1 + (1 - z) * candidate      (computed as candidate + z * (h_tm1 - candidate))
        output_t = h_t

    `bias` is `[2, 3H]`: row 0 is b_in, row 1 is b_rec (Keras's layout).
    """

    state_type = GRUState

    def build(self, input_shape):
        n_in, h = input_shape[-1], self.units
        self.kernel = self.add_weight(
            (n_in, 3 * h), self._seeded(keras.initializers.GlorotUniform, 0), name="kernel"
        )
        self.recurrent_kernel = self.add_weight(
            (h, 3 * h), self._seeded(keras.initializers.Orthogonal, 1), name="recurrent_kernel"
        )
        self.bias = self.add_weight((2, 3 * h), "zeros", name="bias")

    def project_inputs(self, inputs):
        return project(inputs, self.kernel, self.bias[0])

    def step(self, projection_t, state):
        h_tm1 = state.hidden
        inner = tf.nn.bias_add(tf.matmul(h_tm1, self.recurrent_kernel), self.bias[1])
        x_zr, x_h = tf.split(projection_t, [2 * self.units, self.units], axis=-1)
        i_zr, i_h = tf.split(inner, [2 * self.units, self.units], axis=-1)
        z, r = tf.split(tf.sigmoid(x_zr + i_zr), 2, axis=-1)
        candidate = tf.tanh(x_h + r * i_h)
        h = candidate + z * (h_tm1 - candidate)
        return h, GRUState(h)


class SRUCell(Cell):
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


CELL_CLASSES = {"rnn": BasicRNNCell, "lstm": LSTMCell, "gru": GRUCell, "sru": SRUCell}


def _check_cell_name(cell: str) -> None:
    if cell not in CELL_CLASSES:
        raise ValueError(f"cell must be one of {CELLS}, got {cell!r}")


def make_cell(cell: str, units: int, activation: str = "tanh", sru_highway: bool = True, seed: int = 0, name=None):
    """The cell called `cell` ('rnn', 'lstm', 'gru' or 'sru'); each option only reaches the cell it applies to."""
    _check_cell_name(cell)
    if cell == "rnn":
        return BasicRNNCell(units, activation=activation, seed=seed, name=name)
    if activation != "tanh":
        raise ValueError(f"activation={activation!r} applies to the rnn cell only; {cell} uses its own gates")
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
