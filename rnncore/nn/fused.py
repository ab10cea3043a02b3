"""Fused CPU kernels in C++, compiled on first use from the installed TensorFlow's headers.

Why: TensorFlow runs an LSTM or GRU step's elementwise math as 10-15 ops, each a pass over
the step's tensors in memory and a dispatch; at the sizes people train here that is as
much time as the matrix products. `kernels/recurrent_steps.cc` does a step's elementwise
math (forward, and backward for `rnncore.nn.unroll`'s hand-written gradient) in one pass.

`step_ops()` compiles that file once per source, TensorFlow version and compiler into a
cache folder (`UNROLL_KERNEL_CACHE`, else `$XDG_CACHE_HOME/unroll/kernels`, else
`~/.cache/unroll/kernels`), loads it, and returns the module with the four ops. Without a
C++ compiler (`CXX`, else `c++`, `g++` or `clang++` on the PATH), or if compiling fails,
it prints one line saying so and returns None: the cells then use TensorFlow's own ops,
which compute the same values (the parity tests run both). `UNROLL_FUSED_KERNELS=off`
asks for TensorFlow's ops without trying.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import tensorflow as tf

SOURCE = Path(__file__).with_name("kernels") / "recurrent_steps.cc"
COMPILE_TIMEOUT_S = 600
SCRATCH_PREFIX = "building-"
# Vector instructions for Eigen, from what the CPU says it has (the cache key includes them, so a
# home folder shared by machines of different CPUs gets one build per kind). Not -march=native: with
# GCC 12 it turns on AVX512-FP16 paths that TensorFlow's bundled Eigen headers do not compile under.
VECTOR_FLAGS = {("avx2", "fma"): ["-mavx2", "-mfma"]}


def enabled() -> bool:
    """False when UNROLL_FUSED_KERNELS asks for TensorFlow's own ops."""
    return os.environ.get("UNROLL_FUSED_KERNELS", "on").strip().lower() not in ("off", "0", "false", "no")


def cache_dir() -> Path:
    if os.environ.get("UNROLL_KERNEL_CACHE"):
        return Path(os.environ["UNROLL_KERNEL_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "unroll" / "kernels"


def find_compiler() -> str | None:
    """The C++ compiler to use: `CXX` if set (even if it does not exist: then there is none), else the first found."""
    if os.environ.get("CXX"):
        return shutil.which(os.environ["CXX"])
    return next((path for name in ("c++", "g++", "clang++") if (path := shutil.which(name))), None)


def _cpu_flags() -> set[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.partition(":")[2].split())
    except OSError:
        pass
    return set()


def compile_command(compiler: str, output: Path) -> list[str]:
    cpu = _cpu_flags()
    vector = [flag for needs, flags in VECTOR_FLAGS.items() if cpu.issuperset(needs) for flag in flags]
    return [
        compiler,
        "-shared",
        "-fPIC",
        "-O3",
        "-w",
        *vector,
        *tf.sysconfig.get_compile_flags(),
        str(SOURCE),
        "-o",
        str(output),
        *tf.sysconfig.get_link_flags(),
    ]


def _build_key(compiler: str) -> str:
    """What the compiled library depends on: the source, TensorFlow, the compiler and the flags."""
    version = subprocess.run([compiler, "--version"], capture_output=True, text=True, timeout=60).stdout
    parts = [
        SOURCE.read_bytes(),
        tf.__version__.encode(),
        version.encode(),
        " ".join(compile_command(compiler, Path("x"))).encode(),
    ]
    return hashlib.sha256(b"\0".join(parts)).hexdigest()[:16]


def _compile(compiler: str, library: Path) -> None:
    """Compile into a temporary file, then rename: nothing ever loads a half-written library."""
    with tempfile.TemporaryDirectory(dir=library.parent, prefix=SCRATCH_PREFIX) as scratch:
        partial = Path(scratch) / library.name
        done = subprocess.run(
            compile_command(compiler, partial), capture_output=True, text=True, timeout=COMPILE_TIMEOUT_S
        )
        if done.returncode != 0:
            raise RuntimeError(_first_error(done.stderr) or f"exit status {done.returncode}")
        os.replace(partial, library)


def _first_error(stderr: str) -> str | None:
    """The compiler's first error line (its last line is usually only "compilation terminated.")."""
    lines = stderr.strip().splitlines()
    return next((line for line in lines if "error" in line), lines[-1] if lines else None)


@contextlib.contextmanager
def _build_lock(folder: Path) -> Iterator[None]:
    """One build at a time per cache folder: workers starting together on a machine compile once, the
    others wait and load; scratch folders a killed build left behind are removed under the lock."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            for scratch in folder.glob(SCRATCH_PREFIX + "*"):
                shutil.rmtree(scratch, ignore_errors=True)
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _load(compiler: str, library: Path):
    """Load the library, building it first if it is missing, or again once if it does not load."""
    with _build_lock(library.parent):
        if not library.exists():
            _compile(compiler, library)
        try:
            return tf.load_op_library(str(library))
        except tf.errors.NotFoundError:  # a damaged file (a disk filled up, say): build it again
            library.unlink()
            _compile(compiler, library)
            return tf.load_op_library(str(library))


def _notice(reason: str) -> None:
    sys.stderr.write(
        f"unroll: fused LSTM/GRU kernels unavailable ({reason}); using TensorFlow's ops (same results, slower)\n"
    )


@functools.cache
def step_ops():
    """The loaded module with `unroll_{lstm,gru}_{forward,backward}_step`, or None (see above)."""
    if not enabled():
        return None
    compiler = find_compiler()
    if compiler is None:
        _notice(f"no C++ compiler: {os.environ.get('CXX') or 'c++, g++ or clang++'} not found")
        return None
    try:
        return _load(compiler, cache_dir() / f"recurrent_steps-{_build_key(compiler)}.so")
    except (OSError, RuntimeError, subprocess.SubprocessError, tf.errors.NotFoundError) as error:
        _notice(f"compiling {SOURCE.name} failed: {error}")
        return None
