"""The recurrent network the training loop builds from a run config: `RNNSpec` -> `build_rnn`.

A stack of `spec.layers` recurrent layers, each one a cell unrolled statically or
dynamically (or, with `implementation='keras'`, Keras's own LSTM / GRU / SimpleRNN layer
as a peer to measure against), with optional dropout on every layer's inputs, residual
connections from layer 2 on, and bidirectional layers::

    x = inputs                                              # [B, T, input_size]
    for each layer l:
        x_in = dropout(x)                                   # keep_prob < 1 and training only
        out_fw, state_fw = unroll(cell_fw[l], x_in)
        if bidirectional:                                   # reversed within each example's length
            out_bw, state_bw = unroll(cell_bw[l], reverse(x_in))
            out = concat([out_fw, reverse(out_bw)], axis=-1)
        if residual and l > 0:                              # widths are equal from layer 2 on
            out = out + x
        x = out
    return x, [state per layer]                             # (state_fw, state_bw) if bidirectional

The same `spec.seed` gives the same initial weights; LSTM, GRU and RNN initial weights are
the same whether `implementation` is 'unroll' or 'keras' (same initializers, seeds, layout).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import keras
import numpy as np
import tensorflow as tf

from rnncore.nn import cells
from rnncore.nn.core import masked_update
from rnncore.nn.rules import refuse_layer_problems
from rnncore.nn.unroll import MODES, reverse_in_time, unroll

# Whose recurrent layers run: Unroll's own cells, or Keras's layers as a peer to measure against.
IMPLEMENTATIONS = ("unroll", "keras")


@dataclass(frozen=True)
class RNNSpec:
    """What to build; an impossible combination is refused with a ValueError naming the field.

    Names are checked against CELLS, MODES, IMPLEMENTATIONS and ACTIVATIONS, ranges here,
    and how options combine by `rnncore.nn.rules.layer_problems`.
    """

    cell: str = "lstm"
    units: int = 32
    layers: int = 1
    mode: str = "static"
    implementation: str = "unroll"
    activation: str = "tanh"
    sru_highway: bool = True
    bidirectional: bool = False
    residual: bool = False
    keep_prob: float = 1.0
    swap_memory: bool = False
    seed: int = 0

    def __post_init__(self):
        for field, value, allowed in (
            ("cell", self.cell, cells.CELLS),
            ("mode", self.mode, MODES),
            ("implementation", self.implementation, IMPLEMENTATIONS),
            ("activation", self.activation, cells.ACTIVATIONS),
        ):
            if value not in allowed:
                raise ValueError(f"{field} must be one of {allowed}, got {value!r}")
        problems = [
            (self.units < 1, "units must be at least 1"),
            (self.layers < 1, "layers must be at least 1"),
            (not 0.0 < self.keep_prob <= 1.0, f"keep_prob must be in (0, 1], got {self.keep_prob}"),
            (self.seed < 0, f"seed must be non-negative, got {self.seed}"),
        ]
        for failed, message in problems:
            if failed:
                raise ValueError(message)
        refuse_layer_problems(asdict(self))

    @property
    def directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def output_size(self) -> int:
        return self.units * self.directions

    def layer_input_size(self, input_size: int, layer: int) -> int:
        return input_size if layer == 0 else self.output_size


def count_parameters(spec: RNNSpec, input_size: int) -> int:
    """Closed-form number of trainable weights of `build_rnn(spec, input_size)`."""
    return spec.directions * sum(
        cells.cell_parameter_count(spec.cell, spec.layer_input_size(input_size, layer), spec.units, spec.sru_highway)
        for layer in range(spec.layers)
    )


def _derived_seed(seed: int, *path: int) -> int:
    """A 32-bit seed for one part of the network, fixed by `seed` and the part's position."""
    return int(np.random.SeedSequence([seed, *path]).generate_state(1)[0])


_KERAS_LAYERS = {"rnn": keras.layers.SimpleRNN, "lstm": keras.layers.LSTM, "gru": keras.layers.GRU}


def _keras_core(spec: RNNSpec, seed: int, name: str):
    """Keras's own layer for `spec.cell`, initialised like the matching `rnncore.nn.cells` cell."""
    options = {"activation": spec.activation} if spec.cell == "rnn" else {}
    return _KERAS_LAYERS[spec.cell](
        spec.units,
        kernel_initializer=keras.initializers.GlorotUniform(seed=seed),
        recurrent_initializer=keras.initializers.Orthogonal(seed=seed + 1),
        return_sequences=True,
        return_state=True,
        unroll=spec.mode == "static",
        zero_output_for_mask=True,
        name=name,
        **options,
    )


class RNNStack(keras.layers.Layer):
    """The layers described by an `RNNSpec`; call as `layer(inputs, sequence_length=None, training=None)`."""

    def __init__(self, spec: RNNSpec, input_size: int, **kwargs):
        super().__init__(**kwargs)
        self.spec = spec
        self.input_size = int(input_size)
        # Flat lists (Keras tracks them): core of layer l, direction d is at l * directions + d.
        self.cores = []
        for layer in range(spec.layers):
            for direction in range(spec.directions):
                seed = _derived_seed(spec.seed, layer, direction)
                name = f"layer{layer}_{'bw' if direction else 'fw'}"
                if spec.implementation == "keras":
                    self.cores.append(_keras_core(spec, seed, name))
                else:
                    self.cores.append(
                        cells.make_cell(spec.cell, spec.units, spec.activation, spec.sru_highway, seed, name)
                    )
        self.dropouts = []
        if spec.keep_prob < 1.0:
            self.dropouts = [
                keras.layers.Dropout(1.0 - spec.keep_prob, seed=_derived_seed(spec.seed, layer, 2))
                for layer in range(spec.layers)
            ]

    def build(self, input_shape=None):
        for index, core in enumerate(self.cores):
            core.build((None, None, self.spec.layer_input_size(self.input_size, index // self.spec.directions)))
        self.built = True

    def _run(self, core, inputs, sequence_length, mask, training):
        """One direction of one layer: (outputs [B, T, units], final state tuple)."""
        if self.spec.implementation == "unroll":
            return unroll(
                core, inputs, self.spec.mode, sequence_length=sequence_length, swap_memory=self.spec.swap_memory
            )
        outputs, *states = core(inputs, mask=mask, training=training)
        return outputs, cells.CELL_CLASSES[self.spec.cell].state_type(*states)

    def call(self, inputs, sequence_length=None, training=None):
        spec = self.spec
        refuse_layer_problems({"mode": spec.mode, "variable_length": sequence_length is not None})
        if inputs.shape[-1] != self.input_size:
            raise ValueError(f"inputs must have {self.input_size} features, got shape {inputs.shape}")
        mask = None
        if sequence_length is not None:
            sequence_length = tf.cast(sequence_length, tf.int32)
            mask = tf.sequence_mask(sequence_length, tf.shape(inputs)[1])  # [B, T] bool
        x = inputs
        final_states = []
        for layer in range(spec.layers):
            x_in = self.dropouts[layer](x, training=training) if self.dropouts else x
            fw = self.cores[layer * spec.directions]
            outputs, state = self._run(fw, x_in, sequence_length, mask, training)
            if spec.bidirectional:
                bw = self.cores[layer * spec.directions + 1]
                reversed_outputs, state_bw = self._run(
                    bw, reverse_in_time(x_in, sequence_length), sequence_length, mask, training
                )
                outputs = tf.concat([outputs, reverse_in_time(reversed_outputs, sequence_length)], axis=-1)
                state = (state, state_bw)
            if spec.residual and layer > 0:
                # Keep the padding zero: add the inputs only where the example is still running.
                outputs += masked_update(mask, x, 0.0)
            x = outputs
            final_states.append(state)
        return x, final_states


def build_rnn(spec: RNNSpec, input_size: int) -> RNNStack:
    """The network for `spec` on inputs of `input_size` features, built (weights created, seeded by spec.seed)."""
    if input_size < 1:
        raise ValueError(f"input_size must be at least 1, got {input_size}")
    layer = RNNStack(spec, input_size, name=f"{spec.cell}_{spec.mode}_{spec.implementation}")
    layer.build((None, None, input_size))
    return layer
