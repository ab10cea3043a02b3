"""The benchmark (python -m rnncore.bench): its grid, FLOP count and output structure; no speed assertions."""

import json
import math
import os
import subprocess
import sys

import pytest

from rnncore import bench, bench_torch

ROW_FIGURES = (
    "median_ms",
    "q25_ms",
    "q75_ms",
    "spread_ms",
    "min_ms",
    "trace_seconds",
    "peak_mb",
    "gflop_per_step",
    "gflops",
    "matmul_fraction",
    "ratio_keras_lstm",
)


def test_full_grid_covers_the_issue():
    configs = bench.grid(quick=False, pattern=None)
    assert len(configs) == len(set(configs)) == 4 * 2 * 7  # (T, H) shapes x modes x (4 unroll + 3 keras cells)
    assert {(c.sequence_length, c.hidden) for c in configs} == {(28, 32), (28, 128), (28, 512), (200, 128)}
    assert not any(c.implementation == "keras" and c.cell == "sru" for c in configs)
    assert {c.cell for c in configs} == set(bench.CELLS)


def test_filter_by_fields_or_substring_keeps_the_reference():
    chosen = bench.grid(quick=False, pattern="cell=sru,mode=static,hidden=512")
    assert {c.name for c in chosen} == {"unroll/sru/static/T28/H512", "keras/lstm/static/T28/H512"}
    assert {c.name for c in bench.grid(quick=False, pattern="gru/dynamic/T200")} == {
        "unroll/gru/dynamic/T200/H128",
        "keras/gru/dynamic/T200/H128",
        "keras/lstm/dynamic/T200/H128",
    }
    with pytest.raises(ValueError, match="unknown key"):
        bench.grid(quick=False, pattern="colour=red")


def test_the_sequence_length_filter_and_its_short_names():
    by_name = {
        key: {c.name for c in bench.grid(quick=False, pattern=f"cell=gru,mode=static,{key}=200")}
        for key in ("sequence_length", "t", "steps")
    }
    assert by_name["sequence_length"] == {
        "unroll/gru/static/T200/H128",
        "keras/gru/static/T200/H128",
        "keras/lstm/static/T200/H128",
    }
    assert by_name["t"] == by_name["steps"] == by_name["sequence_length"]


def test_flops_by_hand():
    # LSTM: forward 2*B*T*(F+H)*4H for the cell plus 2*B*H*10 for the readout, times 3.
    assert bench.step_flops("lstm", 28, 32) == 3 * (2 * 128 * 28 * (28 + 32) * 4 * 32 + 2 * 128 * 32 * 10)
    # SRU with the highway projection (F != H): four F x H blocks, no recurrent product.
    assert bench.step_flops("sru", 28, 32) == 3 * (2 * 128 * 28 * 28 * 4 * 32 + 2 * 128 * 32 * 10)


def check_document(document, quick=True):
    assert document["machine"]["matmul_gflops"] > 0
    assert document["settings"]["quick"] is quick
    rows = document["rows"]
    assert {r["name"] for r in rows} == {c.name for c in bench.grid(quick=quick, pattern=None)}
    for r in rows:
        for key in ROW_FIGURES:
            assert isinstance(r[key], float), (r["name"], key)
            assert math.isfinite(r[key]), (r["name"], key)
        assert r["median_ms"] > 0
        assert r["gflops"] > 0
        assert r["trace_seconds"] > 0
        assert r["rounds"] >= 3
        assert r["sequence_length"] == 28  # the quick grid's T
        assert (r["ratio_keras_cell"] is None) == (r["cell"] == "sru")
    for r in rows:
        if r["implementation"] == "keras" and r["cell"] == "lstm":
            assert r["ratio_keras_lstm"] == 1.0
    assert all({"target", "value", "limit", "met"} <= set(t) for t in document["targets"])


@pytest.mark.slow
def test_quick_grid_from_the_command_line(tmp_path):
    path = tmp_path / "bench.json"
    result = subprocess.run(
        [sys.executable, "-m", "rnncore.bench", "--quick", "--json", str(path)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert result.returncode == 0, result.stderr
    document = json.loads(path.read_text())
    check_document(document)
    table = result.stdout
    for r in document["rows"]:
        assert r["name"] in table
    assert "GFLOP/s" in table
    assert "targets (issues #7 and #14)" in table


@pytest.mark.slow
def test_recording_overhead_runs_both_loops(tmp_path):
    path = tmp_path / "recording.json"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "rnncore.bench",
            "--recording",
            "--recording-steps",
            "20",
            "--recording-repeats",
            "2",
            "--json",
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert result.returncode == 0, result.stderr
    recording = json.loads(path.read_text())["recording"]
    assert len(recording["train_seconds"]["plain"]) == len(recording["train_seconds"]["recorded"]) == 2
    assert recording["ratio"] > 0
    assert "ratio" in result.stdout


def test_the_torch_peer_joins_each_lstm_and_gru_shape_once():
    configs = bench.with_torch_peers(bench.grid(quick=False, pattern="mode=dynamic,hidden=128"))
    torch = [c for c in configs if c.implementation == "torch"]
    assert {c.name for c in torch} == {
        f"torch/{cell}/whole/T{t}/H128" for cell in ("lstm", "gru") for t in (28, 200)
    }  # one row per cell and shape, whatever the mode; PyTorch has no SRU and a different basic RNN
    assert bench.with_torch_peers([c for c in configs if c.cell == "sru"]) == [c for c in configs if c.cell == "sru"]


def test_the_torch_column_appears_only_with_torch_rows():
    def fake_row(implementation, cell, median, ratio_torch=None):
        config = bench.Config(implementation, cell, "dynamic", 28, 32)
        return {"name": config.name, **vars(config), "median_ms": median, "ratio_torch_cell": ratio_torch}

    plain = bench.format_table([fake_row("unroll", "lstm", 2.0)])
    assert "/torch" not in plain
    rows = [fake_row("unroll", "lstm", 2.0, 2.0), fake_row("torch", "lstm", 1.0, 1.0)]
    table = bench.format_table(rows).splitlines()
    assert table[0].split()[-1] == "/torch"
    assert table[1].split()[-1] == "2.00"


@pytest.mark.skipif(bench_torch.missing() is None, reason="PyTorch is installed here")
def test_peer_torch_without_torch_is_refused_with_how_to_install():
    result = subprocess.run(
        [sys.executable, "-m", "rnncore.bench", "--peer", "torch", "--quick"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert result.returncode == 2
    assert "--peer torch needs PyTorch, which is not installed: pip install torch" in result.stderr
    assert "ms/step" not in result.stdout  # refused before timing anything


@pytest.mark.skipif(bench_torch.missing() is not None, reason="PyTorch is not installed (it is optional)")
def test_peer_torch_times_pytorch_in_the_same_rounds():
    document = bench.run_grid(quick=True, pattern="cell=lstm,mode=dynamic", rounds=1, log=lambda _: None, peer="torch")
    rows = {r["name"]: r for r in document["rows"]}
    torch = rows["torch/lstm/whole/T28/H32"]
    assert torch["median_ms"] > 0
    assert torch["ratio_torch_cell"] == 1.0
    unroll = rows["unroll/lstm/dynamic/T28/H32"]
    assert unroll["ratio_torch_cell"] == pytest.approx(unroll["median_ms"] / torch["median_ms"])
    assert "torch" in document["machine"]
