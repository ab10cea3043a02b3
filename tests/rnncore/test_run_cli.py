"""`python -m rnncore.run`: options from the schema, the same refusals, runs stored with --db."""

import json
import subprocess
import sys
from datetime import timedelta

import pytest

from db import queue
from db.engine import make_engine, session_factory
from db.models import RunStatus
from rnncore.run import annotations_from_args, build_parser, configs_from_args


def cli(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "rnncore.run", *args], capture_output=True, text=True, timeout=timeout)


def test_every_config_field_is_an_option():
    args = build_parser().parse_args(
        ["--hidden-units", "64", "--no-sru-highway", "--clip-norm", "1.5", "--cell", "sru", "--max-steps", "9"]
    )
    [config] = configs_from_args(args)
    assert (config.hidden_units, config.sru_highway, config.clip_norm, config.cell) == (64, False, 1.5, "sru")
    assert config.name == "sru-static"


def test_options_override_a_presets_fields():
    args = build_parser().parse_args(["--preset", "e1-static-vs-dynamic", "--max-steps", "5"])
    assert [config.max_steps for config in configs_from_args(args)] == [5, 5]


def test_a_preset_with_repeats_runs_every_config_with_seeds_1_to_n():
    args = build_parser().parse_args(["--preset", "e1-static-vs-dynamic", "--repeats", "3", "--max-steps", "5"])
    configs = configs_from_args(args)
    assert [(config.mode, config.seed) for config in configs] == [
        (mode, seed) for seed in (1, 2, 3) for mode in ("static", "dynamic")
    ]
    assert configs[0].name == "E1 lstm static seed=1"


@pytest.mark.parametrize("given", [["--repeats", "0", "--preset", "e1-static-vs-dynamic"], ["--repeats", "3"]])
def test_repeats_outside_1_to_10_or_without_a_preset_are_refused(given):
    result = cli(*given)
    assert result.returncode == 2
    assert "--repeats takes 1 to 10, with --preset" in result.stderr


def test_bad_options_are_refused_with_the_dashboards_messages():
    result = cli("--hidden-units", "0", "--max-steps", "3")
    assert result.returncode == 2
    assert "hidden_units: must be greater than or equal to 1" in result.stderr
    result = cli("--cell", "transformer")
    assert result.returncode == 2
    assert "invalid choice: 'transformer'" in result.stderr


def test_tags_and_a_note_are_read_checked_and_normalised():
    args = build_parser().parse_args(["--tag", "Baseline", "--tag", "e1, lstm", "--note", "  before the fix "])
    assert annotations_from_args(args) == {"tags": ["baseline", "e1", "lstm"], "notes": "before the fix"}
    assert annotations_from_args(build_parser().parse_args([])) == {}
    assert annotations_from_args(build_parser().parse_args(["--note", "only"])) == {"tags": None, "notes": "only"}


def test_bad_tags_or_notes_are_refused_before_anything_trains_and_need_a_db(sqlite_url):
    result = cli("--tag", "two words", "--note", "x" * 10_001, "--max-steps", "1", "--db", sqlite_url, timeout=120)
    assert result.returncode == 2
    assert "notes: must be at most 10,000 characters, not 10,001" in result.stderr
    assert "tags: 'two words' is not a tag: use 1 to 32 characters among a-z, 0-9, '-', '_' and '.'" in result.stderr
    with session_factory(make_engine(sqlite_url))() as session:
        assert queue.list_runs(session) == []
    result = cli("--tag", "baseline", "--max-steps", "1", timeout=120)
    assert result.returncode == 2
    assert "--tag and --note are stored with the runs: add --db URL" in result.stderr


@pytest.mark.slow
def test_a_run_launched_with_tags_and_a_note_is_stored_with_them(sqlite_url):
    result = cli("--max-steps", "2", "--hidden-units", "4", "--db", sqlite_url, "--tag", "Baseline,e1", "--note", "cli")
    assert result.returncode == 0, result.stderr
    with session_factory(make_engine(sqlite_url))() as session:
        [run] = queue.list_runs(session)
        assert (run.status, run.tag_list, run.notes, run.starred) == (
            RunStatus.SUCCEEDED,
            ["baseline", "e1"],
            "cli",
            False,
        )


@pytest.mark.slow
def test_a_run_with_db_is_stored_like_a_queued_one(sqlite_url):
    result = cli("--max-steps", "8", "--hidden-units", "8", "--db", sqlite_url, "--json", "--name", "from cli")
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout.strip().splitlines()[-1])
    assert printed["outcome"] == "succeeded"
    assert printed["steps"] == 8
    assert "8/8" in result.stderr  # the progress line
    with session_factory(make_engine(sqlite_url))() as session:
        [run] = queue.list_runs(session)
        assert (run.name, run.status) == ("from cli", RunStatus.SUCCEEDED)
        assert queue.load_curves(session, run.id)["loss"].steps == list(range(1, 9))
        assert queue.live_workers(session, within=timedelta(minutes=1)) == []


def test_a_db_that_cannot_be_opened_is_one_line_and_verbose_adds_the_traceback(tmp_path):
    (tmp_path / "corrupt.db").write_bytes(b"not SQLite at all " * 300)
    url = f"sqlite:///{tmp_path / 'corrupt.db'}"
    result = cli("--db", url, "--max-steps", "1", timeout=120)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip() == (
        f"python -m rnncore.run: error: cannot open the database at {url}: "
        "the file is not a SQLite database (corrupt, or another kind of file)"
    )
    verbose = cli("--db", url, "--max-steps", "1", "--verbose", timeout=120)
    assert verbose.returncode == 2
    assert "Traceback" in verbose.stderr
    assert "file is not a database" in verbose.stderr
    assert verbose.stderr.strip().splitlines()[-1] == result.stderr.strip()
