"""The training loop a worker executes for one run config.

The clock follows E1: step 1 builds (traces) the graph and runs once; its end is time
zero, so every later step's `seconds` measures training alone, and graph building is
reported separately as the trace time.

The loop reports every step through a callback and asks `should_stop` before each
step, so a cancel request or a worker shutdown stops training within one step.
"""

from __future__ import annotations

import math
import os
import platform
import resource
import time
from dataclasses import dataclass
from typing import Callable, Iterator, Optional

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402  (the log level must be set first)
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from db.run_config import RunConfig  # noqa: E402
from rnncore import data  # noqa: E402
from rnncore.network import RNNSpec, build_rnn, count_parameters  # noqa: E402

EVAL_BATCH_SIZE = 128
Record = Callable[[int, float, dict[str, float]], None]
StopCheck = Callable[[], Optional[str]]


class Diverged(RuntimeError):
    """The loss became NaN or infinite; the curve up to that step has been recorded."""

    def __init__(self, step: int, summary: dict):
        super().__init__(f"diverged at step {step}: the loss is not finite")
        self.step = step
        self.summary = summary


class Interrupted(RuntimeError):
    """Training stopped early because `should_stop` gave a reason (e.g. cancel, shutdown)."""

    def __init__(self, reason: str, summary: dict):
        super().__init__(f"interrupted: {reason}")
        self.reason = reason
        self.summary = summary


@dataclass
class _Progress:
    """What the loop knows so far; becomes the run's summary."""

    steps: int = 0
    trace_seconds: float = 0.0
    train_seconds: float = 0.0
    target_step: Optional[int] = None
    target_seconds: Optional[float] = None
    stopped_by: str = ""


def spec_for(config: RunConfig) -> RNNSpec:
    """The recurrent layer's spec: the part of the config rnncore.network understands."""
    return RNNSpec(cell=config.cell, units=config.hidden_units, layers=config.layers, mode=config.mode,
                   implementation=config.implementation, activation=config.activation,
                   sru_highway=config.sru_highway, bidirectional=config.bidirectional,
                   residual=config.residual, keep_prob=config.keep_prob, swap_memory=config.swap_memory,
                   seed=config.seed)


def load_task_data(config: RunConfig) -> data.Dataset:
    if config.task == "mnist":
        return data.load_mnist()
    return data.load_series(config.seed)


def make_optimizer(config: RunConfig) -> keras.optimizers.Optimizer:
    optimizers = {"adam": keras.optimizers.Adam, "sgd": keras.optimizers.SGD, "rmsprop": keras.optimizers.RMSprop}
    return optimizers[config.optimizer](learning_rate=config.learning_rate, global_clipnorm=config.clip_norm)


class Model(keras.Model):
    """The recurrent stack and its head: the last step's output to 10 logits (mnist), or a
    one-value projection at every step (series)."""

    def __init__(self, config: RunConfig, input_size: int):
        super().__init__()
        self.task = config.task
        self.rnn = build_rnn(spec_for(config), input_size=input_size)
        initializer = keras.initializers.GlorotUniform(seed=config.seed + 1)
        self.head = keras.layers.Dense(data.NUM_CLASSES if config.task == "mnist" else 1,
                                       kernel_initializer=initializer)

    def call(self, inputs, training=False):
        outputs, _ = self.rnn(inputs, training=training)
        return self.head(outputs[:, -1] if self.task == "mnist" else outputs)


def _loss_and_score(task: str, targets, predictions):
    """Mean loss and, for mnist, batch accuracy (series reports its MSE as the loss)."""
    if task == "mnist":
        loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=targets, logits=predictions))
        hits = tf.equal(tf.argmax(predictions, axis=-1, output_type=tf.int32), targets)
        return loss, tf.reduce_mean(tf.cast(hits, tf.float32))
    loss = tf.reduce_mean(tf.square(predictions - targets))
    return loss, loss


def shuffled_batches(size: int, batch_size: int, seed: int) -> Iterator[np.ndarray]:
    """Index batches from a shuffled iterator, reshuffled when exhausted (remainders dropped)."""
    rng = np.random.RandomState(seed)
    per_epoch = size // batch_size
    while True:
        order = rng.permutation(size)
        for start in range(0, per_epoch * batch_size, batch_size):
            yield order[start:start + batch_size]


def peak_memory_reset() -> None:
    """Reset the process's resident high-water mark (Linux), so the peak is this run's own."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
    except OSError:
        pass


def peak_memory_mb() -> float:
    """The resident high-water mark since the last reset (VmHWM), in MiB."""
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def evaluate(model: Model, config: RunConfig, dataset: data.Dataset) -> dict[str, float]:
    """Test accuracy (mnist) or test MSE (series) over the whole test set, in batches."""

    @tf.function(reduce_retracing=True)
    def score(x, y):
        return _loss_and_score(config.task, y, model(x, training=False))

    total, weighted = 0, 0.0
    for start in range(0, len(dataset.x_test), EVAL_BATCH_SIZE):
        x, y = dataset.x_test[start:start + EVAL_BATCH_SIZE], dataset.y_test[start:start + EVAL_BATCH_SIZE]
        weighted += float(score(x, y)[1]) * len(x)
        total += len(x)
    key = "test_accuracy" if config.task == "mnist" else "test_mse"
    return {key: weighted / max(total, 1)}


def _target_reached(config: RunConfig, accuracy: float) -> bool:
    return config.target_accuracy is not None and accuracy >= config.target_accuracy


def _step_limit(config: RunConfig, train_size: int) -> Optional[int]:
    """The step at which max_steps or epochs stop the run (whichever comes first)."""
    limits = [config.max_steps] if config.max_steps else []
    if config.epochs:
        limits.append(config.epochs * (train_size // config.batch_size))
    return min(limits) if limits else None


def _summary(config: RunConfig, progress: _Progress, step_ms: list[float], model: Model,
             dataset: data.Dataset, input_size: int) -> dict:
    return {
        "steps": progress.steps,
        "train_seconds": progress.train_seconds,
        "trace_seconds": progress.trace_seconds,
        "median_step_ms": float(np.median(step_ms)) if step_ms else None,
        "target_step": progress.target_step,
        "target_seconds": progress.target_seconds,
        "stopped_by": progress.stopped_by,
        "parameters": count_parameters(spec_for(config), input_size) + model.head.count_params(),
        "peak_memory_mb": peak_memory_mb(),
        "tensorflow": tf.__version__,
        "device": _device_name(),
        **dataset.describe(),
    }


def _device_name() -> str:
    gpus = tf.config.list_logical_devices("GPU")
    return gpus[0].name if gpus else f"CPU ({platform.processor() or platform.machine()})"


def train(config: RunConfig, record: Record, should_stop: StopCheck = lambda: None,
          dataset: Optional[data.Dataset] = None) -> dict:
    """Train one run to its stop criterion; return the summary.

    Raises Interrupted when `should_stop` gives a reason, and Diverged on a non-finite
    loss; both carry the summary so far. Every step is reported through `record`.
    """
    keras.utils.set_random_seed(config.seed)
    peak_memory_reset()
    dataset = dataset or load_task_data(config)
    if config.batch_size > len(dataset.x_train):
        raise ValueError(f"batch_size {config.batch_size} is larger than the training set "
                         f"({len(dataset.x_train)} examples from {dataset.source})")
    input_size = dataset.x_train.shape[-1]
    started = time.perf_counter()
    model = Model(config, input_size)
    optimizer = make_optimizer(config)
    model(dataset.x_train[:1])  # create the head's weights before tracing the step

    @tf.function
    def train_step(x, y):
        with tf.GradientTape() as tape:
            loss, score = _loss_and_score(config.task, y, model(x, training=True))
        gradients = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(gradients, model.trainable_variables))
        return loss, score

    progress, step_ms = _Progress(), []
    limit = _step_limit(config, len(dataset.x_train))
    clock_zero = None
    for indices in shuffled_batches(len(dataset.x_train), config.batch_size, config.seed):
        reason = should_stop()
        if reason:
            progress.stopped_by = reason
            raise Interrupted(reason, _summary(config, progress, step_ms, model, dataset, input_size))
        step_start = time.perf_counter()
        loss, score = (float(value) for value in train_step(dataset.x_train[indices], dataset.y_train[indices]))
        now = time.perf_counter()
        progress.steps += 1
        if clock_zero is None:
            clock_zero, progress.trace_seconds = now, now - started
        else:
            step_ms.append((now - step_start) * 1000)
        progress.train_seconds = now - clock_zero
        values = {"loss": loss, "accuracy": score} if config.task == "mnist" else {"loss": loss}
        record(progress.steps, progress.train_seconds, values)
        if not math.isfinite(loss):
            progress.stopped_by = "diverged"
            raise Diverged(progress.steps, _summary(config, progress, step_ms, model, dataset, input_size))
        if config.task == "mnist" and progress.target_step is None and _target_reached(config, score):
            progress.target_step, progress.target_seconds = progress.steps, progress.train_seconds
            progress.stopped_by = "target_accuracy"
            break
        if limit is not None and progress.steps >= limit:
            progress.stopped_by = "max_steps" if limit == config.max_steps else "epochs"
            break
    summary = _summary(config, progress, step_ms, model, dataset, input_size)
    summary.update(evaluate(model, config, dataset))
    return summary
