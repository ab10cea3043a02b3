"""`python -m rnncore.run`: options from the schema, the same refusals, runs stored with --db."""

import json
import subprocess
import sys
from datetime import timedelta

import pytest

from db import queue
from db.engine import make_engine, session_factory
from db.models import RunStatus
from rnncore.run import build_parser, configs_from_args


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


def test_bad_options_are_refused_with_the_dashboards_messages():
    result = cli("--hidden-units", "0", "--max-steps", "3")
    assert result.returncode == 2
    assert "hidden_units: must be greater than or equal to 1" in result.stderr
    result = cli("--cell", "transformer")
    assert result.returncode == 2
    assert "invalid choice: 'transformer'" in result.stderr


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
