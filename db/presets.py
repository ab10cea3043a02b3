"""Presets: named groups of run configs that reproduce the classic experiments (SPEC E1-E5).

Presets are data, not code paths: each is a list of ordinary run configs that the
dashboard or the command line queues as one group. This module imports no TensorFlow.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from db.run_config import RunConfig, validate_config

# A safety net for target-accuracy presets: a run that never reaches the target still ends.
TARGET_SAFETY_STEPS = 5000


@dataclass(frozen=True)
class Contrast:
    """A preset's question as two values of one config field: how much faster, and how accurate, are
    the runs with `subject` than those with `baseline`? The Compare page measures it when a
    preset's group is selected (dashboard.comparison.reproduction)."""

    field: str
    subject: str
    baseline: str


@dataclass(frozen=True)
class Preset:
    name: str
    title: str
    reproduces: str
    configs: tuple[dict[str, Any], ...]
    # The Compare view (dashboard.comparison.VIEWS) that answers the preset's question: a link to
    # its runs opens there. A plain name, since db/ may not import the dashboard; a test checks it.
    view: str = "metrics"
    # What the write-up reported (SPEC), stated on the Compare page next to today's measured figure;
    # empty when SPEC gives no figure: the page then says nothing.
    published: str = ""
    contrast: Contrast | None = None

    def run_configs(self) -> list[RunConfig]:
        return [validate_config(config) for config in self.configs]


E1_LSTM = {
    "task": "mnist",
    "cell": "lstm",
    "hidden_units": 32,
    "layers": 1,
    "batch_size": 128,
    "learning_rate": 0.01,
    "optimizer": "adam",
    "target_accuracy": 0.9,
    "max_steps": TARGET_SAFETY_STEPS,
}
# SPEC E2: the series task (its window length is free, MNIST's is 28) at growing lengths. Few steps:
# the figures compared (trace time, memory growth, ms per step) settle well within them.
E2_LENGTHS = (20, 50, 100, 200)
E2_LSTM = {
    "task": "series",
    "cell": "lstm",
    "hidden_units": 32,
    "batch_size": 50,
    "learning_rate": 0.01,
    "optimizer": "adam",
    "max_steps": 200,
}
E3_STACK = {
    "task": "mnist",
    "hidden_units": 128,
    "layers": 2,
    "mode": "static",
    "batch_size": 128,
    "learning_rate": 0.01,
    "optimizer": "adam",
    "clip_norm": 1.0,
    "epochs": 3,
}
E4_MINI = {
    "task": "mnist",
    "cell": "lstm",
    "hidden_units": 128,
    "mode": "dynamic",
    "batch_size": 64,
    "learning_rate": 0.01,
    "epochs": 10,
    "train_subset": 1800,
    "head": "last3",
}
E5_SERIES = {
    "task": "series",
    "cell": "rnn",
    "activation": "relu",
    "hidden_units": 100,
    "mode": "dynamic",
    "batch_size": 50,
    "learning_rate": 0.001,
    "max_steps": 1500,
    "n_steps": 20,
}

PRESETS: dict[str, Preset] = {
    preset.name: preset
    for preset in [
        Preset(
            "e1-static-vs-dynamic",
            "E1: static vs dynamic unrolling",
            "An LSTM of 32 units on MNIST, Adam 0.01, batch 128, trained until a batch reaches 90% accuracy, "
            "once statically unrolled and once in a while loop: which trains faster, and to the same accuracy? "
            "Offline, on 4,000 images, we measured 4.27 ms/step static vs 7.02 dynamic; both stopped near step 88 "
            "with test accuracy about 0.89.",
            (
                {**E1_LSTM, "name": "E1 lstm static", "mode": "static"},
                {**E1_LSTM, "name": "E1 lstm dynamic", "mode": "dynamic"},
            ),
            view="e1",
            published="static about 1.5x faster than dynamic, with the same accuracy (TensorFlow 1; a reader's "
            "other setup: dynamic 95.2% vs static 89%)",
            contrast=Contrast("mode", "static", "dynamic"),
        ),
        Preset(
            name="e2-unrolling-cost",
            title="E2: what static unrolling costs",
            reproduces="An LSTM of 32 units on the series task at sequence lengths 20, 50, 100 and 200, statically "
            "unrolled and in a while loop, 200 steps each: static unrolling builds one cell copy per time step, so "
            "its trace time and memory should grow with the length while the dynamic loop's stay flat. "
            "The series task needs no data. On a 2-core CPU we measured trace time 3.0 s at length 20 to 22.5 s at "
            "200 static vs about 2 s at every length dynamic, memory growth 56 to 242 MiB vs 23 to 61, and static "
            "still faster per step (5 vs 9 ms at 20, 53 vs 75 at 200); the 8 runs took about 3 minutes.",
            configs=tuple(
                {**E2_LSTM, "name": f"E2 lstm {mode} T={length}", "mode": mode, "n_steps": length}
                for length in E2_LENGTHS
                for mode in ("static", "dynamic")
            ),
            view="e2",
        ),
        Preset(
            "e3-lstm-vs-sru",
            "E3: LSTM vs SRU",
            "Two stacked layers of 128, static, gradients clipped at 1.0, 3 epochs: test accuracy and time per step "
            "of an LSTM against an SRU (reported then: 98.04% vs 97.19%). Offline, on 4,000 images, 3 epochs are "
            "93 steps: expect lower accuracy than the write-up's (we measured 0.907 vs 0.846).",
            (
                {**E3_STACK, "name": "E3 lstm 2x128", "cell": "lstm"},
                {**E3_STACK, "name": "E3 sru 2x128", "cell": "sru"},
            ),
            published="test accuracy LSTM 98.04% vs SRU 97.19%; 3.3 s per 100 steps for the LSTM vs 2.8 s for "
            "the SRU, so SRU about 1.18x faster (TensorFlow 1)",
            contrast=Contrast("cell", "sru", "lstm"),
        ),
        Preset(
            "e4-mini-mnist",
            "E4: a small wrapper on mini MNIST",
            "1,800 training images, batch 64, 10 epochs, the last 3 outputs into the classifier: Unroll's LSTM "
            "cell against Keras's own layer (reported then: about 90% vs 93%). Offline, the 1,800 come from the "
            "4,000 offline images and the test set is 1,000 images, so expect noisier figures.",
            ({**E4_MINI, "name": "E4 unroll lstm"}, {**E4_MINI, "name": "E4 keras lstm", "implementation": "keras"}),
            published="the hand-written LSTM about 90% in about 6 s, the higher-level library's about 93% in about "
            "23.5 s, so about 3.9x faster (TensorFlow 1, on a GPU)",
            contrast=Contrast("implementation", "unroll", "keras"),
        ),
        Preset(
            "e5-textbook",
            "E5: the textbook notes",
            "A basic RNN of 150 units on MNIST (about 97% after 8 epochs), the time-series RNN of 100 ReLU units "
            "(training MSE about 0.04 by step 1,400), and a 3-layer RNN with input dropout on the same series. "
            "Offline, on 4,000 images, the basic RNN reaches less than the write-up's 97%; the series runs need no "
            "data.",
            (
                {
                    "name": "E5 basic rnn mnist",
                    "task": "mnist",
                    "cell": "rnn",
                    "hidden_units": 150,
                    "mode": "dynamic",
                    "batch_size": 150,
                    "learning_rate": 0.001,
                    "epochs": 8,
                    "eval_every": 100,
                },
                {**E5_SERIES, "name": "E5 series rnn"},
                {**E5_SERIES, "name": "E5 deep rnn dropout", "layers": 3, "keep_prob": 0.5, "learning_rate": 0.01},
            ),
            published="the basic RNN about 93% test accuracy after one epoch and about 97% after eight; the series "
            "RNN's training MSE about 0.04 at iteration 1,400 (TensorFlow 1)",
        ),
    ]
}


def preset(name: str) -> Preset:
    """The named preset, or a KeyError that lists the names there are."""
    try:
        return PRESETS[name]
    except KeyError:
        raise KeyError(f"unknown preset {name!r}; presets are: {', '.join(PRESETS)}") from None


def repeated(configs: Sequence[Mapping[str, Any]], repeats: int = 1) -> list[dict[str, Any]]:
    """A preset's configs, or each with seeds 1..repeats (named "... seed=N") when repeats > 1.

    Seed repeats give the Compare page's intervals a run-to-run spread to measure. The runs are
    interleaved by seed (every config's seed 1, then every config's seed 2, ...) so the sides of a
    comparison share whatever else the machine was doing while they ran, rather than one side
    getting the quiet hour and the other the busy one.
    """
    if repeats <= 1:
        return [dict(config) for config in configs]
    return [
        {**config, "seed": seed, "name": f"{config.get('name') or 'run'} seed={seed}"[:200]}
        for seed in range(1, repeats + 1)
        for config in configs
    ]
