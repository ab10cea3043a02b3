"""The training loop a worker (or `python -m rnncore.run`) executes for one run config.

The clock follows E1: step 1 builds (traces) the graph and runs once; its end is time
zero, so every later step's `seconds` measures training alone, and graph building is
reported separately as the trace time. Evaluations requested with `eval_every` pause the
clock, so they do not make training look slower.

The loop reports every step through a callback and asks `should_stop` before each
step, so a cancel request or a worker shutdown stops training within one step.
"""

from __future__ import annotations

import gc
import math
import os
import platform
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import tensorflow as tf

from db.run_config import RunConfig
from db.summary import SCHEMA_VERSION, RunSummary, StoredSummary
from rnncore import data, machine
from rnncore.memory import MemoryWatch
from rnncore.nn import fused
from rnncore.nn.network import RNNSpec, build_rnn, count_parameters

EVAL_BATCH_SIZE = 128
ROLLOUT_STEPS = 300
LAST3 = 3
Record = Callable[[int, float, dict[str, float]], None]
StopCheck = Callable[[], str | None]


class Diverged(RuntimeError):
    """The loss became NaN or infinite; the curve up to that step has been recorded."""

    def __init__(self, step: int, summary: StoredSummary):
        super().__init__(f"diverged at step {step}: the loss is not finite")
        self.step = step
        self.summary = summary


class Interrupted(RuntimeError):
    """Training stopped early because `should_stop` gave a reason (e.g. cancel, shutdown)."""

    def __init__(self, reason: str, summary: StoredSummary):
        super().__init__(f"interrupted: {reason}")
        self.reason = reason
        self.summary = summary


def spec_for(config: RunConfig) -> RNNSpec:
    """The recurrent layer's spec: the part of the config rnncore.nn.network understands."""
    return RNNSpec(
        cell=config.cell,
        units=config.hidden_units,
        layers=config.layers,
        mode=config.mode,
        implementation=config.implementation,
        activation=config.activation,
        sru_highway=config.sru_highway,
        bidirectional=config.bidirectional,
        residual=config.residual,
        keep_prob=config.keep_prob,
        swap_memory=config.swap_memory,
        seed=config.seed,
    )


def load_task_data(config: RunConfig) -> data.Dataset:
    if config.task == "mnist":
        return data.load_mnist(config.data_path)
    return data.load_series(config.seed, config.n_steps, config.variable_length)


def make_optimizer(config: RunConfig) -> keras.optimizers.Optimizer:
    optimizers = {"adam": keras.optimizers.Adam, "sgd": keras.optimizers.SGD, "rmsprop": keras.optimizers.RMSprop}
    return optimizers[config.optimizer](learning_rate=config.learning_rate, global_clipnorm=config.clip_norm)


class SequenceModel(keras.Model):
    """The recurrent stack and its head: for mnist the last step's output (or the last 3,
    concatenated) into 10 logits (a classifier); for series a one-value projection at every
    step (a next-value regressor)."""

    def __init__(self, config: RunConfig, input_size: int):
        super().__init__()
        self.task, self.head_kind = config.task, config.head
        self.rnn = build_rnn(spec_for(config), input_size=input_size)
        initializer = keras.initializers.GlorotUniform(seed=config.seed + 1)
        self.head = keras.layers.Dense(
            data.NUM_CLASSES if config.task == "mnist" else 1, kernel_initializer=initializer
        )

    def call(self, inputs, sequence_length=None, training=False):
        outputs, _ = self.rnn(inputs, sequence_length=sequence_length, training=training)
        if self.task == "series":
            return self.head(outputs)
        if self.head_kind == "last3":
            return self.head(tf.reshape(outputs[:, -LAST3:], [tf.shape(outputs)[0], -1]))
        return self.head(outputs[:, -1])


def loss_and_score(task: str, targets, predictions, lengths=None):
    """Mean loss and the step's figure: batch accuracy (mnist) or the MSE itself (series).

    With per-example lengths the series MSE counts only the steps inside each length.
    """
    if task == "mnist":
        loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=targets, logits=predictions))
        hits = tf.equal(tf.argmax(predictions, axis=-1, output_type=tf.int32), targets)
        return loss, tf.reduce_mean(tf.cast(hits, tf.float32))
    squared = tf.square(predictions - targets)
    if lengths is None:
        loss = tf.reduce_mean(squared)
    else:
        mask = tf.sequence_mask(lengths, tf.shape(squared)[1], dtype=squared.dtype)[..., tf.newaxis]
        loss = tf.reduce_sum(squared * mask) / tf.reduce_sum(mask)
    return loss, loss


def shuffled_batches(size: int, batch_size: int, seed: int) -> Iterator[np.ndarray]:
    """Index batches from a shuffled iterator, reshuffled when exhausted (remainders dropped)."""
    rng = np.random.RandomState(seed)
    per_epoch = size // batch_size
    while True:
        order = rng.permutation(size)
        for start in range(0, per_epoch * batch_size, batch_size):
            yield order[start : start + batch_size]


def _device_name() -> str:
    gpus = tf.config.list_logical_devices("GPU")
    return gpus[0].name if gpus else f"CPU ({platform.processor() or platform.machine()})"


def test_figure_name(config: RunConfig) -> str:
    return "test_accuracy" if config.task == "mnist" else "test_mse"


def _lengths(lengths: np.ndarray | None, indices) -> np.ndarray | None:
    return None if lengths is None else lengths[indices]


class Trainer:
    """One run's model, optimizer, data and compiled step: what `train` drives."""

    def __init__(self, config: RunConfig, dataset: data.Dataset):
        self.config, self.dataset = config, dataset
        self.input_size = dataset.x_train.shape[-1]
        self.model = SequenceModel(config, self.input_size)
        self.optimizer = make_optimizer(config)
        self.model(dataset.x_train[:1])  # create the head's weights before tracing the step
        self.train_step = tf.function(self._train_step)
        self.score = tf.function(self._score, reduce_retracing=True)

    def _train_step(self, x, y, lengths=None):
        with tf.GradientTape() as tape:
            predictions = self.model(x, sequence_length=lengths, training=True)
            loss, score = loss_and_score(self.config.task, y, predictions, lengths)
        gradients = tape.gradient(loss, self.model.trainable_variables)
        self.optimizer.apply_gradients(zip(gradients, self.model.trainable_variables))
        return loss, score

    def _score(self, x, y, lengths=None):
        return loss_and_score(self.config.task, y, self.model(x, sequence_length=lengths, training=False), lengths)

    def step(self, indices) -> tuple[float, float]:
        d = self.dataset
        loss, score = self.train_step(d.x_train[indices], d.y_train[indices], _lengths(d.train_lengths, indices))
        return float(loss), float(score)

    def evaluate(self) -> float:
        """Test accuracy (mnist) or test MSE (series) over the whole test set, in batches."""
        d, total, weighted = self.dataset, 0, 0.0
        for start in range(0, len(d.x_test), EVAL_BATCH_SIZE):
            window = slice(start, start + EVAL_BATCH_SIZE)
            lengths = _lengths(d.test_lengths, window)
            _, score = self.score(d.x_test[window], d.y_test[window], lengths)
            # Variable-length series: a batch's MSE is over its valid steps, so weigh it by them.
            weight = int(lengths.sum()) if lengths is not None else len(d.x_test[window])
            weighted += float(score) * weight
            total += weight
        return weighted / max(total, 1)

    def series_plots(self) -> dict:
        """E5's plots: the fixed test instance with predictions, and 300-step generative rollouts."""
        n_steps = self.config.n_steps
        inputs, targets = data.series_test_instance(n_steps)
        predictions = self.model(inputs[np.newaxis, :, np.newaxis], training=False).numpy()[0, :, 0]
        real_seed = data.series_function(data.INSTANCE_START + np.arange(n_steps) * data.SERIES_RESOLUTION)
        return {
            "instance": {"inputs": inputs.tolist(), "targets": targets.tolist(), "predictions": predictions.tolist()},
            "rollouts": {"zeros": self.rollout(np.zeros(n_steps)), "real": self.rollout(real_seed)},
        }

    def rollout(self, seed_window: np.ndarray, steps: int = ROLLOUT_STEPS) -> list[float]:
        """Start from a window and keep appending the model's next-step prediction."""
        n_steps = self.config.n_steps
        predict = tf.function(lambda window: self.model(window, training=False)[0, -1, 0])
        sequence = [float(value) for value in seed_window]
        for _ in range(steps):
            window = np.asarray(sequence[-n_steps:], dtype=np.float32)[np.newaxis, :, np.newaxis]
            sequence.append(float(predict(window)))
        return sequence

    def parameters(self) -> int:
        return int(count_parameters(spec_for(self.config), self.input_size) + self.model.head.count_params())


@dataclass
class Progress:
    """What the loop knows so far; becomes the run's summary."""

    steps: int = 0
    trace_seconds: float = 0.0
    train_seconds: float = 0.0
    target_step: int | None = None
    target_seconds: float | None = None
    stopped_by: str = ""
    step_ms: list[float] = field(default_factory=list)

    def stop(self, reason: str) -> None:
        """Record why training ends; reaching the target also records when it was reached."""
        self.stopped_by = reason
        if reason == "target_accuracy":
            self.target_step, self.target_seconds = self.steps, self.train_seconds


def summarize(trainer: Trainer, progress: Progress, memory: MemoryWatch, **final: Any) -> RunSummary:
    """The run's summary so far; `final` adds what only a finished run has (the test figure, series plots)."""
    return RunSummary(
        schema_version=SCHEMA_VERSION,
        steps=progress.steps,
        train_seconds=progress.train_seconds,
        trace_seconds=progress.trace_seconds,
        median_step_ms=float(np.median(progress.step_ms)) if progress.step_ms else None,
        target_step=progress.target_step,
        target_seconds=progress.target_seconds,
        stopped_by=progress.stopped_by,
        parameters=trainer.parameters(),
        **memory.figures(),
        tensorflow=tf.__version__,
        device=_device_name(),
        cpu=machine.cpu_model(),
        cpu_cores=machine.cpu_cores(),
        **trainer.dataset.describe(),
        **final,
    )


def step_limit(config: RunConfig, train_size: int) -> int | None:
    """The step at which max_steps or epochs stop the run (whichever comes first)."""
    limits = [config.max_steps] if config.max_steps else []
    if config.epochs:
        limits.append(config.epochs * (train_size // config.batch_size))
    return min(limits) if limits else None


def stop_reason(config: RunConfig, steps: int, score: float, limit: int | None) -> str | None:
    """Why the run ends after `steps` steps, the last scoring `score`, if it does (the target is checked first)."""
    if config.task == "mnist" and config.target_accuracy is not None and score >= config.target_accuracy:
        return "target_accuracy"
    if limit is not None and steps >= limit:
        return "max_steps" if limit == config.max_steps else "epochs"
    return None


def train(
    config: RunConfig, record: Record, should_stop: StopCheck = lambda: None, dataset: data.Dataset | None = None
) -> StoredSummary:
    """Train one run to its stop criterion; return the summary, as stored (`RunSummary.to_stored()`).

    Raises Interrupted when `should_stop` gives a reason, and Diverged on a non-finite
    loss; both carry the summary so far. Every step is reported through `record`.
    """
    keras.backend.clear_session()  # a worker's earlier runs leave nothing behind in Keras
    gc.collect()
    fused.step_ops()  # built (once per machine) or loaded before the clocks start, not inside the trace time
    keras.utils.set_random_seed(config.seed)
    memory = MemoryWatch().start()
    dataset = dataset or load_task_data(config)
    if config.train_subset:
        dataset = data.subset(dataset, config.train_subset)
    if config.batch_size > len(dataset.x_train):
        raise ValueError(
            f"batch_size {config.batch_size} is larger than the training set "
            f"({len(dataset.x_train)} examples from {dataset.source})"
        )
    started = time.perf_counter()
    trainer = Trainer(config, dataset)
    progress, limit = Progress(), step_limit(config, len(dataset.x_train))
    clock_zero, test_name = None, test_figure_name(config)
    for indices in shuffled_batches(len(dataset.x_train), config.batch_size, config.seed):
        reason = should_stop()
        if reason:
            progress.stop(reason)
            raise Interrupted(reason, summarize(trainer, progress, memory).to_stored())
        step_start = time.perf_counter()
        loss, score = trainer.step(indices)
        now = time.perf_counter()
        progress.steps += 1
        if clock_zero is None:
            clock_zero, progress.trace_seconds = now, now - started
        else:
            progress.step_ms.append((now - step_start) * 1000)
        progress.train_seconds = now - clock_zero
        values = {"loss": loss, "accuracy": score} if config.task == "mnist" else {"loss": loss}
        if config.eval_every and progress.steps % config.eval_every == 0:
            values[test_name] = trainer.evaluate()
            clock_zero += time.perf_counter() - now  # evaluation is not training time
        record(progress.steps, progress.train_seconds, values)
        if not math.isfinite(loss):
            progress.stop("diverged")
            raise Diverged(progress.steps, summarize(trainer, progress, memory).to_stored())
        reason = stop_reason(config, progress.steps, score, limit)
        if reason:
            progress.stop(reason)
            break
    final: dict[str, Any] = {test_name: trainer.evaluate()}
    if config.task == "series":
        final["series"] = trainer.series_plots()
    return summarize(trainer, progress, memory, **final).to_stored()  # after evaluation: its memory counts too
