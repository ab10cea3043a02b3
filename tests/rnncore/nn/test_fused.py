"""The fused LSTM and GRU step kernels (rnncore.nn.fused): the same values as TensorFlow's ops, built once, and a
one-line fallback where no compiler is found. The unroll-level parity on both paths is in test_unroll.py."""

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import tensorflow as tf

from rnncore.nn import cells, fused

TOL = dict(rtol=1e-6, atol=1e-6)


def normal(rng, *shape):
    return tf.constant(rng.normal(size=shape, scale=2.0), tf.float32)


# (3, 5): rows on this thread; (300, 512): enough work to be shared across the intra-op threads.
@pytest.mark.parametrize("batch, units", [(3, 5), (300, 512)])
def test_the_fused_step_computes_what_tensorflows_ops_compute(batch, units, fused_step_ops):
    ops, rng = fused_step_ops, np.random.default_rng(batch)
    cell = cells.LSTMCell(units)
    projection, recurrent = normal(rng, batch, 4 * units), normal(rng, batch, 4 * units)
    state = cells.LSTMState(normal(rng, batch, units), normal(rng, batch, units))

    expected_state, expected_saved = cell.plain_forward_step(projection, recurrent, state)
    h, c, *saved = ops.unroll_lstm_forward_step(projection, recurrent, state.cell)
    for got, want in zip([h, c, *saved], [*expected_state, *expected_saved]):
        np.testing.assert_allclose(got, want, **TOL)

    d_h, d_c = normal(rng, batch, units), normal(rng, batch, units)
    d_z, d_c_prev = ops.unroll_lstm_backward_step(d_h, d_c, *expected_saved)
    want_d_c = d_c + d_h * expected_saved.output_factor
    np.testing.assert_allclose(d_z, tf.concat([want_d_c] * 3 + [d_h], -1) * expected_saved.gate_factors, **TOL)
    np.testing.assert_allclose(d_c_prev, want_d_c * expected_saved.forget, **TOL)


@pytest.mark.parametrize("batch, units", [(3, 5), (300, 512)])
def test_the_fused_gru_step_computes_what_tensorflows_ops_compute(batch, units, fused_step_ops):
    ops, rng = fused_step_ops, np.random.default_rng(batch)
    cell = cells.GRUCell(units)
    projection, recurrent = normal(rng, batch, 3 * units), normal(rng, batch, 3 * units)
    state = cells.GRUState(normal(rng, batch, units))

    expected_state, expected_saved = cell.plain_forward_step(projection, recurrent, state)
    h, *saved = ops.unroll_gru_forward_step(projection, recurrent, state.hidden)
    for got, want in zip([h, *saved], [*expected_state, *expected_saved]):
        np.testing.assert_allclose(got, want, **TOL)

    d_h = normal(rng, batch, units)
    d_projection, d_recurrent, d_h_prev = ops.unroll_gru_backward_step(d_h, *expected_saved)
    d_h3 = tf.concat([d_h] * 3, -1)
    np.testing.assert_allclose(d_projection, d_h3 * expected_saved.projection_factors, **TOL)
    np.testing.assert_allclose(d_recurrent, d_h3 * expected_saved.recurrent_factors, **TOL)
    np.testing.assert_allclose(d_h_prev, d_h * expected_saved.carry, **TOL)


def test_the_fused_step_refuses_mismatched_shapes_naming_them(fused_step_ops):
    ops, rng = fused_step_ops, np.random.default_rng(0)
    with pytest.raises(tf.errors.InvalidArgumentError, match="projection must be \\[B, 4H\\]"):
        ops.unroll_lstm_forward_step(normal(rng, 2, 6), normal(rng, 2, 6), normal(rng, 2, 1))
    with pytest.raises(tf.errors.InvalidArgumentError, match="c_prev must be \\[B, H\\]"):
        ops.unroll_lstm_forward_step(normal(rng, 2, 8), normal(rng, 2, 8), normal(rng, 2, 3))
    with pytest.raises(tf.errors.InvalidArgumentError, match="d_h and output_factor must have the same shape"):
        ops.unroll_lstm_backward_step(*[normal(rng, 2, 2)] * 2, normal(rng, 2, 8), normal(rng, 3, 2), normal(rng, 2, 2))
    with pytest.raises(tf.errors.InvalidArgumentError, match="projection must be \\[B, 3H\\]"):
        ops.unroll_gru_forward_step(normal(rng, 2, 4), normal(rng, 2, 4), normal(rng, 2, 1))
    with pytest.raises(tf.errors.InvalidArgumentError, match="d_h and carry"):
        ops.unroll_gru_backward_step(normal(rng, 2, 2), normal(rng, 2, 6), normal(rng, 2, 6), normal(rng, 2, 3))


def load_in_a_new_process(cache, **env):
    """`fused.step_ops()` in a fresh interpreter (the loader caches its answer per process)."""
    code = "from rnncore.nn import fused; print('loaded' if fused.step_ops() is not None else 'fallback')"
    environment = {**os.environ, "UNROLL_KERNEL_CACHE": str(cache), "TF_CPP_MIN_LOG_LEVEL": "3"}
    for chosen_by_the_test in ("CXX", "UNROLL_FUSED_KERNELS"):
        environment.pop(chosen_by_the_test, None)
    done = subprocess.run(
        [sys.executable, "-c", code], env={**environment, **env}, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr
    notices = [line for line in done.stderr.splitlines() if line.startswith("unroll:")]
    return done.stdout.strip(), notices


def test_without_a_compiler_the_cells_fall_back_with_one_line(tmp_path):
    outcome, notices = load_in_a_new_process(tmp_path, CXX="no-such-c++-compiler")
    assert outcome == "fallback"
    assert notices == [
        "unroll: fused LSTM/GRU kernels unavailable (no C++ compiler: no-such-c++-compiler not found); "
        "using TensorFlow's ops (same results, slower)"
    ]
    assert not list(tmp_path.iterdir())  # nothing half-built left behind


def test_off_means_tensorflows_ops_without_trying(tmp_path):
    assert load_in_a_new_process(tmp_path, UNROLL_FUSED_KERNELS="off") == ("fallback", [])
    assert not list(tmp_path.iterdir())


@pytest.mark.slow
def test_the_kernels_are_compiled_once_and_then_loaded_from_the_cache(tmp_path, fused_step_ops):
    # Two processes starting together on an empty cache (workers on one machine): one build, both load.
    with ThreadPoolExecutor(2) as pool:
        assert list(pool.map(lambda _: load_in_a_new_process(tmp_path), range(2))) == [("loaded", [])] * 2
    [library] = [path for path in tmp_path.iterdir() if path.suffix == ".so"]
    built = library.stat().st_mtime_ns
    assert load_in_a_new_process(tmp_path) == ("loaded", [])
    assert library.stat().st_mtime_ns == built  # loaded, not rebuilt
    assert not list(tmp_path.glob(fused.SCRATCH_PREFIX + "*"))

    (tmp_path / (fused.SCRATCH_PREFIX + "left-by-a-killed-build")).mkdir()
    library.write_bytes(b"not a library")  # damaged: built again, once
    assert load_in_a_new_process(tmp_path) == ("loaded", [])
    assert library.stat().st_size > 1000
    assert not list(tmp_path.glob(fused.SCRATCH_PREFIX + "*"))
