"""Launching several runs at once: grids, presets and the queue limit (no Streamlit here)."""

from __future__ import annotations

import itertools
from datetime import datetime, timezone
from typing import Any, Mapping, Sequence

from sqlalchemy.orm import Session

from dashboard.settings import Settings
from db import queue
from db.run_config import ConfigError, RunConfig, validate_config

# The fields a grid can vary, in the order they appear in run names.
GRID_FIELDS = ("cell", "mode", "implementation", "hidden_units", "n_steps")
SHORT = {"hidden_units": "h", "n_steps": "len", "implementation": "impl"}


def parse_int_list(text: str) -> list[int]:
    """"32, 64 128" -> [32, 64, 128]; raises ValueError naming the part that is not a whole number."""
    values = []
    for part in text.replace(",", " ").split():
        try:
            values.append(int(part))
        except ValueError:
            raise ValueError(f"{part!r} is not a whole number") from None
    return list(dict.fromkeys(values))


def grid_configs(base: Mapping[str, Any], choices: Mapping[str, Sequence[Any]], repeats: int = 1) -> list[dict]:
    """The product of the chosen values over `base`, each repeated with seeds seed, seed+1, ...

    A field with no chosen values keeps the base's value. Names say what differs:
    "base cell=gru mode=dynamic h=64 seed=1".
    """
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
    """Validate every config: (configs, {}) or ([], {field: "message (in run 'name')"}) for the first failures."""
    valid, errors = [], {}
    for config in configs:
        try:
            valid.append(validate_config(dict(config)))
        except ConfigError as error:
            for field, message in error.errors:
                errors.setdefault(field, f"{message} (in run {config.get('name')!r})")
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
            raise ConfigError([("max_steps", f"this dashboard runs at most {max_steps} steps per run: set "
                                             f"max_steps to {max_steps} or less (run {config.name!r})")])


def requeue(session: Session, run_id: int, settings: Settings) -> None:
    """Run a finished run again, within this dashboard's limits (the caller checked the password).

    Raises TransitionError, QueueFullError, or ConfigError when the stored run exceeds the
    host's step limit (it may have come from the command line).
    """
    stored = queue.get_run(session, run_id)
    if stored is not None:
        check_step_limit([validate_config(stored.config)], settings.max_steps)
    queue.requeue(session, run_id, max_queued=settings.max_queued)


def launch(session: Session, configs: Sequence[RunConfig | Mapping[str, Any]], group: str | None,
           settings: Settings, password: str | None) -> list[int]:
    """Queue the runs as one group, all or nothing, if this dashboard allows it and within its limits.

    Raises dashboard.settings.NotAllowed, db.run_config.ConfigError or db.queue.QueueFullError;
    nothing is stored then.
    """
    settings.check_write(password)
    validated = [validate_config(config) for config in configs]
    check_step_limit(validated, settings.max_steps)
    return queue.enqueue_many(session, validated, group=group, max_queued=settings.max_queued)
