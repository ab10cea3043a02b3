"""The machine a run is measured on, for its summary: the CPU model and the cores the worker may use.

A timing means little without the machine behind it, and a report read later (or on another
machine) cannot ask; so the worker records both with every run. Plain Python, no TensorFlow:
TensorFlow's version is recorded next to these by rnncore.train.
"""

from __future__ import annotations

import functools
import os
import platform
from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")


def _cpuinfo_model(text: str) -> str | None:
    """The first "model name" of a Linux /proc/cpuinfo (x86), else its "Hardware"/"Processor" line (ARM)."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip().lower(), value.strip())
    for key in ("model name", "hardware", "processor"):
        value = fields.get(key, "")
        if value and not value.isdigit():  # x86's "processor" is the core's number, not a name
            return value
    return None


@functools.cache
def cpu_model(cpuinfo: Path = CPUINFO) -> str:
    """The CPU's model name ("AMD EPYC 7B13"); the architecture ("x86_64") where no name is readable."""
    try:
        named = _cpuinfo_model(cpuinfo.read_text(errors="replace"))
    except OSError:
        named = None
    return named or platform.processor() or platform.machine() or "unknown"


def cpu_cores() -> int:
    """The cores this process may run on (its affinity, which containers and taskset narrow), at least 1."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1
