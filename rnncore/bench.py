"""Benchmark: which RNN is faster, measured so that the measurement does not distort it (issue #7).

    python -m rnncore.bench [--quick] [--filter cell=lstm,mode=static] [--json PATH]
    python -m rnncore.bench --recording [--json PATH]
    python -m rnncore.bench --ray [--ray-runs 40] [--ray-nodes 1,2,3] [--db URL]   (rnncore.bench_ray)

The grid times one training step (forward, backward, Adam update), in a plain
`tf.function` as rnncore.train compiles it, for cells rnn, lstm, gru, sru x modes static,
dynamic x implementations Unroll and Keras (Keras's own layers; none for sru), at batch
128 and 28 features, for (T, H) in (28, 32), (28, 128), (28, 512), (200, 128).

How it measures, so that the figures can be compared:
* configurations of the same (T, H) are built (traced) one after the other, then timed
  in interleaved rounds (each round visits every configuration once, in a shuffled
  order, after one warm-up step), so slow drifts of this shared machine hit all alike;
* a row's time is the median over rounds of ms per step; the spread is the
  interquartile range of the rounds; ratios are ratios of those medians;
* trace seconds: from creating the `tf.function` to the end of its first step;
* peak MiB: the resident high-water mark during the first two steps minus the resident
  size just before them (freed heap is returned to the system first, so the figure is the
  step's own working set: graph, activations kept for the backward pass, gradients);
* GFLOP/s: the step's matrix-product FLOPs counted analytically (the forward products,
  times 3 for forward + backward), per second; `matmul %` compares it with the
  machine's float32 matmul rate measured at the start of the same run.

`--recording` instead measures what streaming a run's metrics to SQLite costs: the same
training loop (rnncore.train.train, E1's LSTM) with and without the worker's RunRecorder,
in alternating repeats, and prints the ratio of training seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import tensorflow as tf

from rnncore import bench_torch
from rnncore.memory import MemoryWatch
from rnncore.nn import fused
from rnncore.nn.cells import CELLS, cell_parameter_count
from rnncore.nn.network import IMPLEMENTATIONS, MODES, RNNSpec, build_rnn
from rnncore.nn.rules import layer_problems

BATCH, FEATURES, CLASSES = 128, 28, 10
FULL_SHAPES = ((28, 32), (28, 128), (28, 512), (200, 128))  # (T, H)
QUICK_SHAPES = ((28, 32),)
FULL_CELLS, QUICK_CELLS = CELLS, tuple(cell for cell in CELLS if cell != "rnn")
SAMPLE_SECONDS = 0.25  # each timing sample runs enough steps to last about this long


# --- what is measured ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Config:
    """One benchmarked layer: `sequence_length` time steps (T) of `hidden` units (H)."""

    implementation: str
    cell: str
    mode: str
    sequence_length: int
    hidden: int

    @property
    def name(self) -> str:
        return f"{self.implementation}/{self.cell}/{self.mode}/T{self.sequence_length}/H{self.hidden}"

    def fields(self) -> dict:
        """The --filter keys; `t` and `steps` are short names for `sequence_length`, `h` for `hidden`."""
        length = str(self.sequence_length)
        return {
            "implementation": self.implementation,
            "cell": self.cell,
            "mode": self.mode,
            "sequence_length": length,
            "t": length,
            "steps": length,
            "hidden": str(self.hidden),
            "h": str(self.hidden),
        }

    def reference(self, cell: str = "lstm") -> Config:
        """Keras's layer of `cell` at the same mode, T and H: what ratios are taken against."""
        return Config("keras", cell, self.mode, self.sequence_length, self.hidden)


def matches(config: Config, pattern: str) -> bool:
    """`key=value[,key=value...]` (keys: implementation, cell, mode, sequence_length/t/steps, hidden/h) or a
    substring of the name."""
    if "=" not in pattern:
        return pattern in config.name
    fields = config.fields()
    for term in pattern.split(","):
        key, _, value = term.partition("=")
        if key.strip() not in fields:
            raise ValueError(f"--filter: unknown key {key!r}; use one of {sorted(fields)}")
        if fields[key.strip()] != value.strip():
            return False
    return True


def grid(quick: bool, pattern: str | None) -> list[Config]:
    """The configurations to time (those the library builds); the Keras LSTM each ratio needs is added even if
    filtered out."""
    cells, shapes = (QUICK_CELLS, QUICK_SHAPES) if quick else (FULL_CELLS, FULL_SHAPES)
    configs = [
        Config(impl, cell, mode, length, hidden)
        for length, hidden in shapes
        for cell in cells
        for mode in MODES
        for impl in IMPLEMENTATIONS
        if not layer_problems({"cell": cell, "mode": mode, "implementation": impl})
    ]
    if pattern:
        chosen = [c for c in configs if matches(c, pattern)]
        references = {c.reference() for c in chosen}
        configs = [c for c in configs if c in chosen or c in references]
    return configs


def step_flops(cell: str, sequence_length: int, hidden: int, batch: int = BATCH, features: int = FEATURES) -> float:
    """Matrix-product FLOPs of one train step: the forward products (cell and readout) times 3.

    Forward, every product of an [m, k] by a [k, n] matrix is 2 m k n FLOPs; backward
    computes two products of the same size per forward product (input and weight gradients).
    The cell's weight count (minus biases) is exactly its matrix entries, each used once per
    example and time step.
    """
    biases = {"rnn": hidden, "lstm": 4 * hidden, "gru": 6 * hidden, "sru": 2 * hidden}[cell]
    matrix_entries = cell_parameter_count(cell, features, hidden) - biases
    forward = 2 * batch * sequence_length * matrix_entries + 2 * batch * hidden * CLASSES
    return 3.0 * forward


# --- the machine ----------------------------------------------------------------------------------


def matmul_gflops(size: int = 2048, products: int = 8, repeats: int = 5) -> float:
    """The machine's float32 matmul rate: best of `repeats` of `products` distinct [size, size] products."""
    a = tf.random.stateless_normal([size, size], seed=[0, 0])
    bs = [tf.random.stateless_normal([size, size], seed=[0, i + 1]) for i in range(products)]

    @tf.function
    def run(a, bs):  # distinct operands, so no product can be shared or skipped
        return tf.add_n([tf.reduce_sum(tf.matmul(a, b)[:1, :1]) for b in bs])

    run(a, bs).numpy()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run(a, bs).numpy()
        best = min(best, time.perf_counter() - start)
    return 2.0 * size**3 * products / best / 1e9


def measure_peak_mb(run: Callable[[], None]) -> float:
    """MiB the memory high-water mark rises above what was in use while `run` runs."""
    watch = MemoryWatch().start()
    run()
    return watch.figures()["memory_growth_mb"]


# --- one configuration ----------------------------------------------------------------------------


def make_train_step(spec: RNNSpec, sequence_length: int, batch: int = BATCH, features: int = FEATURES):
    """A zero-argument callable running one train step (forward, backward, Adam) on fixed data, T = sequence_length."""
    layer = build_rnn(spec, features)
    readout = tf.Variable(tf.random.stateless_normal([spec.output_size, CLASSES], seed=[spec.seed, 1]) * 0.1)
    variables = layer.trainable_variables + [readout]
    optimizer = keras.optimizers.Adam(1e-3)
    optimizer.build(variables)
    inputs = tf.random.stateless_normal([batch, sequence_length, features], seed=[spec.seed, 2])
    labels = tf.random.stateless_uniform([batch], seed=[spec.seed, 3], maxval=CLASSES, dtype=tf.int32)

    @tf.function
    def train_step(inputs, labels):
        with tf.GradientTape() as tape:
            outputs, _ = layer(inputs, training=True)
            logits = tf.matmul(outputs[:, -1], readout)
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits))
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss

    def run() -> None:
        train_step(inputs, labels).numpy()

    return run


@dataclass
class Timed:
    config: Config
    run: Callable[[], None]
    trace_seconds: float
    peak_mb: float
    per_sample: int = 1
    samples_ms: list[float] = field(default_factory=list)


TORCH_MODE = "whole"  # PyTorch's CPU LSTM/GRU runs a whole sequence in one primitive: neither unrolling mode


def torch_config(config: Config) -> Config:
    """PyTorch's layer of the same cell, T and H (`--peer torch`)."""
    return Config("torch", config.cell, TORCH_MODE, config.sequence_length, config.hidden)


def with_torch_peers(configs: list[Config]) -> list[Config]:
    """`configs` and PyTorch's layer for each LSTM or GRU shape among them."""
    return configs + list(dict.fromkeys(torch_config(c) for c in configs if c.cell in bench_torch.CELLS))


def prepare(config: Config) -> Timed:
    """Build the configuration's train step, timing its trace (PyTorch's: its first step; it builds no graph)
    and measuring its peak memory, and size its timing samples."""
    if config.implementation == "torch":
        build = lambda: bench_torch.make_train_step(
            config.cell, config.sequence_length, config.hidden, BATCH, FEATURES, CLASSES
        )
    else:
        spec = RNNSpec(cell=config.cell, units=config.hidden, mode=config.mode, implementation=config.implementation)
        build = lambda: make_train_step(spec, config.sequence_length)
    holder = {}

    def trace_and_run_twice():
        start = time.perf_counter()
        holder["run"] = build()
        holder["run"]()
        holder["trace"] = time.perf_counter() - start
        holder["run"]()

    peak = measure_peak_mb(trace_and_run_twice)
    start = time.perf_counter()
    holder["run"]()
    estimate = time.perf_counter() - start
    return Timed(config, holder["run"], holder["trace"], peak, per_sample=max(1, round(SAMPLE_SECONDS / estimate)))


def time_interleaved(timed: list[Timed], rounds: int, seed: int = 0) -> None:
    """Each round: every configuration in a shuffled order, one warm-up step, then one timed sample."""
    order = list(timed)
    shuffle = random.Random(seed).shuffle
    for _ in range(rounds):
        shuffle(order)
        for item in order:
            item.run()
            start = time.perf_counter()
            for _ in range(item.per_sample):
                item.run()
            item.samples_ms.append((time.perf_counter() - start) * 1e3 / item.per_sample)


def row(item: Timed, machine_gflops: float) -> dict:
    c = item.config
    median = float(np.median(item.samples_ms))
    q25, q75 = (float(v) for v in np.percentile(item.samples_ms, [25, 75]))
    flops = step_flops(c.cell, c.sequence_length, c.hidden)
    gflops = flops / (median / 1e3) / 1e9
    return {
        "name": c.name,
        **asdict(c),
        "batch": BATCH,
        "features": FEATURES,
        "median_ms": median,
        "q25_ms": q25,
        "q75_ms": q75,
        "spread_ms": q75 - q25,
        "min_ms": float(min(item.samples_ms)),
        "rounds": len(item.samples_ms),
        "steps_per_sample": item.per_sample,
        "trace_seconds": item.trace_seconds,
        "peak_mb": item.peak_mb,
        "gflop_per_step": flops / 1e9,
        "gflops": gflops,
        "matmul_fraction": gflops / machine_gflops,
    }


def add_ratios(rows: list[dict]) -> None:
    """ratio_keras_lstm: time over Keras LSTM's (same mode, T, H); ratio_keras_cell: over Keras's same cell."""
    by_name = {r["name"]: r for r in rows}
    for r in rows:
        config = Config(r["implementation"], r["cell"], r["mode"], r["sequence_length"], r["hidden"])
        for key, cell in (("ratio_keras_lstm", "lstm"), ("ratio_keras_cell", r["cell"])):
            reference = by_name.get(config.reference(cell).name)
            r[key] = r["median_ms"] / reference["median_ms"] if reference else None
        torch = by_name.get(torch_config(config).name)
        r["ratio_torch_cell"] = r["median_ms"] / torch["median_ms"] if torch else None


# --- the targets --------------------------------------------------------------------------


def targets(rows: list[dict]) -> list[dict]:
    """Each target of issues #7 and #14 that the rows can judge: met or missed, with the measured figure."""
    found = {(r["implementation"], r["cell"], r["mode"], r["sequence_length"], r["hidden"]): r for r in rows}
    checks = []

    def check(what, key, figure, limit, at_most=True):
        r = found.get(key)
        if r is None or r.get(figure) is None:
            return
        value = r[figure]
        checks.append(
            {
                "target": what,
                "name": r["name"],
                "figure": figure,
                "value": value,
                "limit": limit,
                "met": value <= limit if at_most else value >= limit,
            }
        )

    for cell in ("lstm", "gru"):
        for mode in MODES:
            for hidden, limit in ((32, 1.0), (128, 1.0), (512, 0.8)):
                check(
                    f"#7 {cell} {mode} H={hidden}: time / Keras {cell} <= {limit}",
                    ("unroll", cell, mode, 28, hidden),
                    "ratio_keras_cell",
                    limit,
                )
            for hidden in (32, 128, 512):
                check(
                    f"#14 {cell} {mode} H={hidden}: time / Keras {cell} <= 0.9",
                    ("unroll", cell, mode, 28, hidden),
                    "ratio_keras_cell",
                    0.9,
                )
    for mode in MODES:
        for length, hidden, limit in ((28, 128, 1 / 3), (28, 512, 1 / 6), (200, 128, 1 / 5)):
            check(
                f"#7 sru {mode} T={length} H={hidden}: time / Keras lstm <= {limit:.3f}",
                ("unroll", "sru", mode, length, hidden),
                "ratio_keras_lstm",
                limit,
            )
        check(
            f"#7 lstm {mode} H=512: >= 70% of the machine's matmul rate",
            ("unroll", "lstm", mode, 28, 512),
            "matmul_fraction",
            0.7,
            at_most=False,
        )
    return checks


# --- output ---------------------------------------------------------------------------------------

COLUMNS = [
    ("name", "{:<30}"),
    ("median_ms", "{:>9.2f}"),
    ("spread_ms", "{:>7.2f}"),
    ("trace_seconds", "{:>7.2f}"),
    ("peak_mb", "{:>8.1f}"),
    ("gflops", "{:>7.1f}"),
    ("matmul_fraction", "{:>7.1%}"),
    ("ratio_keras_lstm", "{:>8.2f}"),
    ("ratio_keras_cell", "{:>8.2f}"),
]
HEADERS = ["configuration", "ms/step", "IQR ms", "trace s", "peak MiB", "GFLOP/s", "matmul", "/k-lstm", "/k-cell"]
TORCH_COLUMN, TORCH_HEADER = ("ratio_torch_cell", "{:>8.2f}"), "/torch"


def format_table(rows: list[dict]) -> str:
    """The rows as a table; with PyTorch rows (--peer torch), a last column of ratios to PyTorch's same cell."""
    with_torch = any(r["implementation"] == "torch" for r in rows)
    columns, headers = (COLUMNS + [TORCH_COLUMN], HEADERS + [TORCH_HEADER]) if with_torch else (COLUMNS, HEADERS)
    widths = [len(fmt.format(0 if key != "name" else "")) for key, fmt in columns]
    lines = [" ".join(h.rjust(w) if i else h.ljust(w) for i, (h, w) in enumerate(zip(headers, widths)))]
    for r in rows:
        cells = [
            fmt.format(r[key]) if r.get(key) is not None else "-".rjust(w) for (key, fmt), w in zip(columns, widths)
        ]
        lines.append(" ".join(cells))
    return "\n".join(lines)


def format_targets(checks: list[dict]) -> str:
    return "\n".join(
        f"{'met   ' if c['met'] else 'MISSED'} {c['target']}: {c['value']:.3f} ({c['name']})" for c in checks
    )


def machine_info() -> dict:
    return {
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "gpus": len(tf.config.list_physical_devices("GPU")),
    }


def run_grid(
    quick: bool = False,
    pattern: str | None = None,
    rounds: int | None = None,
    log: Callable[[str], None] = print,
    peer: str | None = None,
) -> dict:
    """Measure the grid; returns the JSON document (machine, settings, rows, targets). `peer="torch"` adds
    PyTorch's LSTM and GRU at the same shapes, timed in the same interleaved rounds."""
    configs = grid(quick, pattern)
    if not configs:
        raise ValueError(f"--filter {pattern!r} matches no configuration")
    if peer == "torch":
        configs = with_torch_peers(configs)
    rounds = rounds or (3 if quick else 9)
    matmul_size = 1024 if quick else 2048
    kernels = fused.step_ops()  # built before any trace is timed
    machine = {
        **machine_info(),
        "fused_step_kernels": kernels is not None,
        "matmul_size": matmul_size,
        "matmul_gflops": matmul_gflops(matmul_size),
    }
    if peer == "torch":
        machine["torch"] = bench_torch.version()
    log(f"float32 matmul {matmul_size}x{matmul_size}: {machine['matmul_gflops']:.1f} GFLOP/s")
    rows = []
    for shape in dict.fromkeys((c.sequence_length, c.hidden) for c in configs):
        group = [c for c in configs if (c.sequence_length, c.hidden) == shape]
        log(f"T={shape[0]} H={shape[1]}: tracing {len(group)} configurations")
        timed = [prepare(c) for c in group]
        time_interleaved(timed, rounds)
        rows += [row(item, machine["matmul_gflops"]) for item in timed]
    add_ratios(rows)
    settings = {
        "batch": BATCH,
        "features": FEATURES,
        "rounds": rounds,
        "quick": quick,
        "filter": pattern,
        "sample_seconds": SAMPLE_SECONDS,
    }
    return {"machine": machine, "settings": settings, "rows": rows, "targets": targets(rows)}


# --- recording overhead ---------------------------------------------------------------------------


def run_recording(steps: int = 600, repeats: int = 5, log: Callable[[str], None] = print) -> dict:
    """Training seconds of E1's LSTM with and without the worker's RunRecorder (SQLite), alternating."""
    from db import queue
    from db.engine import make_engine, session_factory
    from db.run_config import validate_config
    from rnncore import data, train
    from rnncore.worker import RunRecorder

    config = validate_config(
        {
            "name": "bench recording",
            "task": "mnist",
            "cell": "lstm",
            "hidden_units": 32,
            "mode": "static",
            "batch_size": 128,
            "max_steps": steps,
            "seed": 0,
        }
    )
    os.environ.setdefault("UNROLL_MNIST_DOWNLOAD", "off")  # a benchmark does not wait on the network
    dataset = data.load_mnist()
    folder = tempfile.TemporaryDirectory(prefix="unroll-bench-")
    factory = session_factory(make_engine(f"sqlite:///{folder.name}/bench.db"))
    worker_id = "bench-worker"
    with factory.begin() as session:
        queue.register_worker(session, worker_id, platform.node(), os.getpid())

    def plain() -> tuple[float, list[float]]:
        seconds = []
        summary = train.train(config, lambda step, s, values: seconds.append(s), dataset=dataset)
        return summary["train_seconds"], seconds

    def recorded() -> tuple[float, list[float]]:
        with factory.begin() as session:
            run_id = queue.enqueue(session, config)
            queue.claim(session, run_id, worker_id)
        recorder = RunRecorder(factory, run_id, worker_id).start()
        seconds = []

        def record(step, s, values):
            recorder.record(step, s, values)
            seconds.append(s)

        def should_stop():
            return "lost" if recorder.lost.is_set() else ("cancelled" if recorder.cancel.is_set() else None)

        try:
            summary = train.train(config, record, should_stop, dataset=dataset)
        finally:
            recorder.close()
        with factory() as session:
            stored = len(queue.load_curves(session, run_id)["loss"].steps)
        if stored != steps:
            raise RuntimeError(f"the recorder stored {stored} of {steps} loss points")
        return summary["train_seconds"], seconds

    results = {"plain": [], "recorded": []}
    gaps = {"plain": [], "recorded": []}
    for repeat in range(repeats):
        order = [("plain", plain), ("recorded", recorded)]
        for kind, fn in order if repeat % 2 == 0 else order[::-1]:
            total, seconds = fn()
            results[kind].append(total)
            gaps[kind] += list(np.diff(seconds) * 1e3)
            log(f"repeat {repeat + 1}/{repeats} {kind:>8}: {total:.3f} s for {steps - 1} timed steps")
    folder.cleanup()
    medians = {kind: float(np.median(values)) for kind, values in results.items()}
    return {
        "config": config.model_dump(),
        "data_source": dataset.source,
        "repeats": repeats,
        "steps": steps,
        "train_seconds": results,
        "median_seconds": medians,
        "ratio": medians["recorded"] / medians["plain"],
        "step_ms_p50": {k: float(np.percentile(v, 50)) for k, v in gaps.items()},
        "step_ms_p99": {k: float(np.percentile(v, 99)) for k, v in gaps.items()},
        "step_ms_max": {k: float(np.max(v)) for k, v in gaps.items()},
        "limit": 1.05,
    }


def format_recording(result: dict) -> str:
    m = result["median_seconds"]
    lines = [
        f"training seconds (median of {result['repeats']}): plain {m['plain']:.3f}, "
        f"recorded {m['recorded']:.3f}; ratio {result['ratio']:.3f} (limit {result['limit']})"
    ]
    for kind in ("plain", "recorded"):
        lines.append(
            f"  {kind:>8} step interval ms: p50 {result['step_ms_p50'][kind]:.2f}, "
            f"p99 {result['step_ms_p99'][kind]:.2f}, max {result['step_ms_max'][kind]:.2f}"
        )
    return "\n".join(lines)


# --- command line ---------------------------------------------------------------------------------


def _ray_nodes(parser: argparse.ArgumentParser, text: str) -> list[int]:
    """--ray-nodes as a list of node counts, each 1 to 8; refused with what it takes."""
    try:
        nodes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        nodes = []
    if not nodes or not all(1 <= count <= 8 for count in nodes):
        parser.error(f"--ray-nodes takes node counts from 1 to 8, comma separated (e.g. 1,2,3), not {text!r}")
    return nodes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rnncore.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a small grid for CI (H=32, T=28; no speed checks)")
    parser.add_argument(
        "--filter",
        metavar="PATTERN",
        help="key=value[,key=value] (implementation, cell, mode, sequence_length or t, hidden or h) "
        "or a name substring",
    )
    parser.add_argument("--rounds", type=int, help="interleaved timing rounds (default 9, --quick 3)")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument(
        "--peer",
        choices=bench_torch.PEERS,
        help="also time PyTorch's CPU LSTM and GRU at the same shapes, with a column of ratios to them "
        "(needs torch installed; not a dependency of Unroll)",
    )
    parser.add_argument(
        "--recording",
        action="store_true",
        help="measure the recording overhead (RunRecorder to SQLite) instead of the grid",
    )
    parser.add_argument("--recording-steps", type=int, default=600)
    parser.add_argument("--recording-repeats", type=int, default=5)
    parser.add_argument(
        "--ray",
        action="store_true",
        help="measure the Ray executor on local 1-CPU nodes against hand-started workers, on tiny runs "
        "(rnncore.bench_ray; needs requirements-ray.txt)",
    )
    parser.add_argument("--ray-runs", type=int, default=40, metavar="N", help="tiny runs per configuration")
    parser.add_argument(
        "--ray-nodes", default="1,2,3", metavar="LIST", help="Ray nodes, and hand-started workers, to compare"
    )
    parser.add_argument("--db", metavar="URL", help="with --ray: a PostgreSQL server to use (default: SQLite files)")
    args = parser.parse_args(argv)
    if args.peer and (args.ray or args.recording):
        parser.error("--peer applies to the grid, not to --ray or --recording")
    if args.peer and (why := bench_torch.missing()):
        parser.error(why)
    log = lambda message: print(message, file=sys.stderr, flush=True)
    if args.ray:
        from rnncore.bench_ray import format_ray_benchmark, run_ray_benchmark

        nodes = _ray_nodes(parser, args.ray_nodes)
        if args.ray_runs < 1:
            parser.error(f"--ray-runs must be at least 1, not {args.ray_runs}")
        result = {"machine": machine_info(), "ray": run_ray_benchmark(args.ray_runs, nodes, args.db, log)}
        print(format_ray_benchmark(result["ray"]))
    elif args.recording:
        result = {
            "machine": machine_info(),
            "recording": run_recording(args.recording_steps, args.recording_repeats, log),
        }
        print(format_recording(result["recording"]))
    else:
        try:
            result = run_grid(args.quick, args.filter, args.rounds, log, peer=args.peer)
        except ValueError as error:
            parser.error(str(error))
        print(
            f"train step (forward, backward, Adam), B={BATCH} F={FEATURES}; medians of "
            f"{result['settings']['rounds']} interleaved rounds; machine float32 matmul "
            f"{result['machine']['matmul_gflops']:.1f} GFLOP/s; fused LSTM/GRU kernels "
            f"{'on' if result['machine']['fused_step_kernels'] else 'off (TensorFlow ops)'}"
        )
        print(format_table(result["rows"]))
        if result["targets"]:
            print("\ntargets (issues #7 and #14):")
            print(format_targets(result["targets"]))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(result, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
