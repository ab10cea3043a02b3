"""Peak memory of a piece of work: the process's resident high-water mark on CPU (Linux),
TensorFlow's peak device memory on a GPU.

A worker runs many runs in one process, so the absolute high-water mark mostly measures
the TensorFlow runtime and what earlier runs left. `MemoryWatch` therefore reports both
the absolute peak and its growth over the resident size at the start, which is what
tells static unrolling's activations from dynamic's.
"""

from __future__ import annotations

import contextlib
import ctypes
import resource

import tensorflow as tf


def _status_mb(key: str) -> float:
    """A field of /proc/self/status (VmRSS, VmHWM) in MiB, or NaN off Linux."""
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def _release_free_heap() -> None:
    """Hand freed heap back to the system, so the starting resident size is what is in use."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _gpu() -> str | None:
    gpus = tf.config.list_logical_devices("GPU")
    return gpus[0].name.replace("/device:", "") if gpus else None


class MemoryWatch:
    """Start it before the work; `figures()` after gives peak_memory_mb and memory_growth_mb."""

    def __init__(self) -> None:
        self.gpu = _gpu()
        self.start_mb = 0.0

    def start(self) -> MemoryWatch:
        if self.gpu:
            tf.config.experimental.reset_memory_stats(self.gpu)
            self.start_mb = tf.config.experimental.get_memory_info(self.gpu)["current"] / 2**20
            return self
        _release_free_heap()
        try:
            with open("/proc/self/clear_refs", "w") as handle:
                handle.write("5")  # resets VmHWM to the current VmRSS
        except OSError:
            pass
        self.start_mb = _status_mb("VmRSS")
        return self

    def peak_mb(self) -> float:
        if self.gpu:
            return tf.config.experimental.get_memory_info(self.gpu)["peak"] / 2**20
        peak = _status_mb("VmHWM")
        return peak if peak == peak else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    def figures(self) -> dict[str, float]:
        peak = self.peak_mb()
        return {"peak_memory_mb": peak, "memory_growth_mb": peak - self.start_mb}
