"""Trace-time figures: how long a tf.function train step takes to build and run once, per cell and mode.

    python -m rnncore.trace_times [--steps 28 200] [--cells lstm gru] [--implementation keras]

For each cell, mode and sequence length T, the time from creating the `tf.function` train
step (forward + backward + optimizer update) to the end of its first call: graph tracing,
graph optimisation and one step. Static unrolling traces one cell copy per step, so its
figure grows with T; the dynamic while loop's should not. A later step's time is shown
for scale.
"""

from __future__ import annotations

import argparse
import time

import keras
import tensorflow as tf

from rnncore.cells import CELLS
from rnncore.network import MODES, RNNSpec, build_rnn


def measure(spec: RNNSpec, steps: int, batch: int, features: int, later_steps: int = 3) -> tuple[float, float]:
    """(seconds to trace and run the first train step, seconds per later step)."""
    layer = build_rnn(spec, features)
    readout = tf.Variable(tf.random.stateless_normal([spec.output_size, 10], seed=[spec.seed, 1]) * 0.1)
    variables = layer.trainable_variables + [readout]
    optimizer = keras.optimizers.Adam(1e-3)
    optimizer.build(variables)
    inputs = tf.random.stateless_normal([batch, steps, features], seed=[spec.seed, 2])
    labels = tf.random.stateless_uniform([batch], seed=[spec.seed, 3], maxval=10, dtype=tf.int32)

    start = time.perf_counter()

    @tf.function
    def train_step(inputs, labels):
        with tf.GradientTape() as tape:
            outputs, _ = layer(inputs, training=True)
            logits = tf.matmul(outputs[:, -1], readout)
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits))
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss

    train_step(inputs, labels).numpy()
    first = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(later_steps):
        train_step(inputs, labels).numpy()
    return first, (time.perf_counter() - start) / later_steps


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cells", nargs="+", default=list(CELLS), choices=CELLS)
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    parser.add_argument("--steps", nargs="+", type=int, default=[28, 200], help="sequence lengths T")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--features", type=int, default=28)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--implementation", default="unroll", choices=["unroll", "keras"])
    args = parser.parse_args(argv)

    print(
        f"train step (forward + backward + Adam), B={args.batch} F={args.features} H={args.hidden}, "
        f"implementation={args.implementation}"
    )
    header = ["cell", "mode"] + [f"trace T={t} (s)" for t in args.steps] + [f"step T={t} (ms)" for t in args.steps]
    print(" | ".join(f"{h:>15}" if i > 1 else f"{h:<7}" for i, h in enumerate(header)))
    for cell in args.cells:
        if args.implementation == "keras" and cell == "sru":
            continue
        for mode in args.modes:
            spec = RNNSpec(cell=cell, units=args.hidden, mode=mode, implementation=args.implementation)
            results = [measure(spec, steps, args.batch, args.features) for steps in args.steps]
            row = [cell, mode] + [f"{first:.2f}" for first, _ in results] + [f"{1e3 * s:.1f}" for _, s in results]
            print(" | ".join(f"{v:>15}" if i > 1 else f"{v:<7}" for i, v in enumerate(row)), flush=True)


if __name__ == "__main__":
    main()
