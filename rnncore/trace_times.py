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

from rnncore.bench import make_train_step
from rnncore.nn.cells import CELLS
from rnncore.nn.network import IMPLEMENTATIONS, MODES, RNNSpec
from rnncore.nn.rules import layer_problems


def measure(
    spec: RNNSpec, sequence_length: int, batch: int, features: int, later_steps: int = 3
) -> tuple[float, float]:
    """(seconds to build, trace and run the first train step on T = sequence_length, seconds per later step)."""
    start = time.perf_counter()
    run = make_train_step(spec, sequence_length, batch, features)
    run()
    first = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(later_steps):
        run()
    return first, (time.perf_counter() - start) / later_steps


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cells", nargs="+", default=list(CELLS), choices=CELLS)
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    parser.add_argument("--steps", nargs="+", type=int, default=[28, 200], help="sequence lengths T")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--features", type=int, default=28)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--implementation", default="unroll", choices=IMPLEMENTATIONS)
    args = parser.parse_args(argv)

    print(
        f"train step (forward + backward + Adam), B={args.batch} F={args.features} H={args.hidden}, "
        f"implementation={args.implementation}"
    )
    header = ["cell", "mode"] + [f"trace T={t} (s)" for t in args.steps] + [f"step T={t} (ms)" for t in args.steps]
    print(" | ".join(f"{h:>15}" if i > 1 else f"{h:<7}" for i, h in enumerate(header)))
    for cell in args.cells:
        for mode in args.modes:
            if layer_problems({"cell": cell, "mode": mode, "implementation": args.implementation}):
                continue  # a combination the library does not build (Keras has no SRU)
            spec = RNNSpec(cell=cell, units=args.hidden, mode=mode, implementation=args.implementation)
            results = [measure(spec, length, args.batch, args.features) for length in args.steps]
            row = [cell, mode] + [f"{first:.2f}" for first, _ in results] + [f"{1e3 * s:.1f}" for _, s in results]
            print(" | ".join(f"{v:>15}" if i > 1 else f"{v:<7}" for i, v in enumerate(row)), flush=True)


if __name__ == "__main__":
    main()
