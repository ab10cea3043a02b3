"""The dashboard's settings, from environment variables or Streamlit secrets alike.

Every setting has one name, used both as an environment variable and as a top-level key
of `.streamlit/secrets.toml` (the way Streamlit Community Cloud passes configuration).
The environment wins when both are set. A value that cannot be understood stops the
dashboard with a message naming the setting, rather than being silently ignored.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from db.engine import DEFAULT_DB_URL
from db.queue import STALE_AFTER_SECONDS

DEFAULT_MAX_QUEUED = 500
TRUE = {"1", "true", "yes", "on"}
FALSE = {"0", "false", "no", "off", ""}


class SettingsError(ValueError):
    """A setting has a value the dashboard cannot use; the message names it."""


class NotAllowed(PermissionError):
    """A write was refused (read-only dashboard, or a wrong launch password); nothing changed."""


@dataclass(frozen=True)
class Settings:
    db_url: str = DEFAULT_DB_URL
    readonly: bool = False
    launch_password: str | None = None
    worker_autostart: bool = True
    max_queued: int = DEFAULT_MAX_QUEUED
    max_steps: int | None = None
    stale_after: float = STALE_AFTER_SECONDS

    def check_write(self, password: str | None) -> None:
        """Refuse any change in read-only mode, or without the launch password when one is set."""
        if self.readonly:
            raise NotAllowed(
                "this dashboard is read-only: launching and run actions are switched off "
                "(UNROLL_READONLY); nothing was changed"
            )
        if self.launch_password and not hmac.compare_digest((password or "").encode(), self.launch_password.encode()):
            raise NotAllowed("the launch password is missing or wrong: nothing was changed")

    @property
    def starts_worker(self) -> bool:
        """A read-only host shows runs; it does not train them on its own machine."""
        return self.worker_autostart and not self.readonly

    @property
    def needs_password(self) -> bool:
        return bool(self.launch_password) and not self.readonly


def _flag(name: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in TRUE:
        return True
    if lowered in FALSE:
        return False
    raise SettingsError(f"{name} must be one of 1/true/yes/on or 0/false/no/off, not {value!r}")


def _positive_int(name: str, value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise SettingsError(f"{name} must be a whole number of at least 1, not {value!r}")
    return number


MIN_STALE_AFTER = 6.0  # three default heartbeats: a shorter limit would fail runs that are alive


def _seconds(name: str, value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = 0.0
    if not MIN_STALE_AFTER <= number <= 86_400.0:
        raise SettingsError(
            f"{name} must be a number of seconds from {MIN_STALE_AFTER:g} to 86400 (workers "
            f"heart-beat every 2 s), not {value!r}"
        )
    return number


def _text(_name: str, value: str) -> str | None:
    return value or None


# setting name -> (Settings field, parser)
SETTINGS: dict[str, tuple[str, Callable[[str, str], Any]]] = {
    "UNROLL_DB_URL": ("db_url", lambda _name, value: value or DEFAULT_DB_URL),
    "UNROLL_READONLY": ("readonly", _flag),
    "UNROLL_LAUNCH_PASSWORD": ("launch_password", _text),
    "UNROLL_WORKER": ("worker_autostart", _flag),
    "UNROLL_MAX_QUEUED": ("max_queued", _positive_int),
    "UNROLL_MAX_STEPS": ("max_steps", _positive_int),
    "UNROLL_STALE_AFTER": ("stale_after", _seconds),
}


def resolve(environ: Mapping[str, str], secrets: Mapping[str, Any]) -> Settings:
    """Settings from the environment first, then the secrets; defaults for what neither sets."""
    values = {}
    for name, (field, parse) in SETTINGS.items():
        raw = environ.get(name) or None  # an empty variable (common in compose files) is unset
        if raw is None and name in secrets:
            raw = secrets[name]
        if raw is not None:
            values[field] = parse(name, str(raw).lower() if isinstance(raw, bool) else str(raw))
    return Settings(**values)
