"""The fused LSTM/GRU kernels for the tests that need them."""

import os

import pytest

from rnncore.nn import fused


@pytest.fixture(scope="session")
def fused_step_ops():
    """The compiled kernels. Where they cannot be built the test skips, except in CI (CI=true), where it
    fails: a green CI must have tested them."""
    ops = fused.step_ops()
    if ops is None:
        if os.environ.get("CI") == "true":
            pytest.fail("the fused LSTM/GRU kernels did not build (see the notice above)")
        pytest.skip("no C++ compiler for the fused LSTM/GRU kernels")
    return ops
