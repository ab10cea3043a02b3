"""Exports of a comparison (no Streamlit): every point with every run's config, a standalone HTML
report, and the summary as a Markdown table.

Each export stands alone: read a year later, or by someone without the database, it still says
what each run was (its full config), what it ran on (data source, CPU, cores, TensorFlow) and
how the page was set to show it. User text (run names, groups, paths) is neutralised on the way
out: spreadsheet formulas in CSVs are quoted, HTML is escaped, Markdown is backslash-escaped.
"""

from __future__ import annotations

import html
import io
import math
import re
import zipfile
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlencode

import pandas as pd
import plotly.graph_objects as go

from dashboard import sharing, summary
from dashboard.charts import BANDS, X_AXES
from dashboard.comparison import VIEWS, Comparison
from dashboard.tables import NUMERIC, WHOLE
from db.summary import RunSummary

# What the zip export holds, and how its files join: said in the download button's help and in the zip.
ZIP_HELP = (
    "A zip of two CSV files: points.csv, every stored point of the selected runs (not reduced), one row "
    "per point; and configs.csv, one row per run with every config field. Join them on run_id."
)
NOT_RECORDED = "not recorded"
# Characters that mean something in Markdown (inline) or end a table cell: escaped in user text.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#|~$!&:])")


def points_csv(points: pd.DataFrame, runs: Sequence[Any]) -> str:
    """All stored points of the runs (not downsampled), with run names and wall-clock times."""
    names = {run.id: _inert_in_spreadsheets(run.name) for run in runs}
    out = points.assign(
        run=points["run_id"].map(names), wall_clock=pd.to_datetime(points["wall"].astype(float), unit="s", utc=True)
    )
    return out[["run_id", "run", "metric", "step", "seconds", "wall_clock", "value"]].to_csv(index=False)


def configs_csv(runs: Sequence[Any]) -> str:
    """One row per run: run_id, run (its name), group, then every config field, defaults included
    (as stored), so the points can be told apart by any field without the database."""
    fields: list[str] = []
    for run in runs:
        fields += [name for name in (run.config or {}) if name not in fields and name != "name"]
    rows = [
        {
            "run_id": run.id,
            "run": _inert_in_spreadsheets(run.name),
            "group": _inert_in_spreadsheets(run.group or ""),
            **{field: _csv_value((run.config or {}).get(field)) for field in fields},
        }
        for run in runs
    ]
    return pd.DataFrame(rows, columns=["run_id", "run", "group", *fields]).to_csv(index=False)


def _csv_value(value: Any) -> Any:
    """A config value for a CSV cell: unset is empty, text is made inert (a path is user text too)."""
    if value is None:
        return ""
    return _inert_in_spreadsheets(value) if isinstance(value, str) else value


def points_zip(points: pd.DataFrame, runs: Sequence[Any]) -> bytes:
    """points.csv and configs.csv, joined by run_id, in one zip (see ZIP_HELP). Two files rather than
    the config repeated on every point: 20 runs of 20,000 points would carry it 400,000 times."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("points.csv", points_csv(points, runs))
        archive.writestr("configs.csv", configs_csv(runs))
        archive.writestr("README.txt", ZIP_HELP + "\n")
    return buffer.getvalue()


def _inert_in_spreadsheets(text: str) -> str:
    """A name starting with = + - @ would run as a formula in a spreadsheet: quote it."""
    return f"'{text}" if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _table(frame: pd.DataFrame, index: bool = False) -> str:
    return frame.dropna(axis=1, how="all").to_html(
        index=index, escape=True, na_rep="", border=0, float_format=lambda value: f"{value:.4g}"
    )


def html_report(
    title: str,
    figures: Sequence[go.Figure],
    tables: Sequence[tuple[str, pd.DataFrame, bool]],
    notes: Sequence[str] = (),
) -> str:
    """One HTML file that opens with no server: plotly.js is embedded once, every text escaped.

    `tables` are (heading, frame, show_index) triples.
    """
    parts = [
        f"<h1>{html.escape(title)}</h1>",
        f"<p>Generated {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC by Unroll.</p>",
    ]
    parts += [f"<p>{html.escape(note)}</p>" for note in notes]
    for heading, frame, index in tables:
        if len(frame):
            parts += [f"<h2>{html.escape(heading)}</h2>", _table(frame, index)]
    for number, figure in enumerate(figures):
        parts.append(figure.to_html(full_html=False, include_plotlyjs=number == 0))
    style = (
        "body{font-family:sans-serif;margin:2em} table{border-collapse:collapse;font-size:13px}"
        " td,th{padding:4px 8px;border-bottom:1px solid #ddd;text-align:right}"
    )
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{style}</style></head><body>{''.join(parts)}</body></html>"
    )


def config_table(runs: Sequence[Any]) -> pd.DataFrame:
    """Every config field of every run (not only those that differ): a row per field, a column per run."""
    fields: list[str] = []
    for run in runs:
        fields += [name for name in (run.config or {}) if name not in fields]
    data = {run.label: [_shown((run.config or {}).get(field)) for field in fields] for run in runs}
    return pd.DataFrame(data, index=pd.Index(fields, name="field"), dtype=str)


def _shown(value: Any) -> str:
    return "not set" if value is None else str(value)


def provenance_table(runs: Sequence[Any]) -> pd.DataFrame:
    """Per run, what it was measured on: the data (source and sizes, in words), the worker, the
    device, CPU model and cores, and the TensorFlow version, as its summary recorded them."""
    rows = []
    for run in runs:
        stored = run.summary or {}
        figures = RunSummary.from_stored(stored)
        data = dict(summary.data_rows(stored, (run.config or {}).get("task")))
        machine = {
            "device": figures.device,
            "CPU": figures.cpu,
            "CPU cores": figures.cpu_cores,
            "TensorFlow": figures.tensorflow,
        }
        rows.append(
            {
                "run": run.label,
                "status": run.status,
                "data": data.get("data", NOT_RECORDED),
                "test set": data.get("test set", NOT_RECORDED),
                "worker": run.worker or NOT_RECORDED,
                **{key: NOT_RECORDED if value is None else str(value) for key, value in machine.items()},
            }
        )
    columns = ["run", "status", "data", "test set", "worker", "device", "CPU", "CPU cores", "TensorFlow"]
    return pd.DataFrame(rows, columns=columns, dtype=str)


def settings_table(state: Mapping[str, Any]) -> pd.DataFrame:
    """The Compare page's settings the report was made with, in the page's words, and the link
    parameters that open the same view again (on any Unroll holding these runs)."""
    group = state.get("group") or ""
    rows = [
        ("view", VIEWS.get(state.get("view", ""), str(state.get("view")))),
        ("x axis", X_AXES.get(state.get("x", ""), str(state.get("x")))),
        ("EMA smoothing", f"{float(state.get('smooth') or 0.0):g}"),
        ("log y (losses and errors)", "on" if state.get("log") else "off"),
        ("group by", group or "(each run)"),
        ("band", BANDS.get(state.get("band", ""), str(state.get("band"))) if group else "(no grouping)"),
        ("speed baseline", state.get("baseline") or "(none)"),
        ("target accuracy", f"{float(state.get('target') or 0.0):g}"),
        ("link", "compare?" + urlencode(sharing.to_query(state), safe=",")),
    ]
    return pd.DataFrame(rows, columns=["setting", "value"], dtype=str)


def comparison_report(view: Comparison, state: Mapping[str, Any], title: str = "Unroll comparison") -> str:
    """The Compare page as one HTML file: its figures and summary tables, and everything needed to
    read them without the dashboard: the view settings, each run's data and machine, and each
    run's full config (the differences first, for the eye)."""
    tables = [("Per group", view.per_group, False)] if view.per_group is not None else []
    tables += [
        ("Per run", view.per_run, False),
        ("View settings", settings_table(state), False),
        ("Data and machine", provenance_table(view.runs), False),
        ("Config differences", view.diff, True),
        ("Config of every run", config_table(view.runs), True),
    ]
    return html_report(title, [figure for _, figure in view.figures], tables, [*view.reproduction, *view.sentences])


def md_cell(value: Any, whole: bool = False) -> str:
    """One Markdown table cell: numbers to 4 significant digits (whole counts whole), empty for
    missing; text on one line with every Markdown character escaped, so a name can neither end
    the cell (|) nor become a link, an image or HTML where the table is pasted."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{value:,.0f}" if whole else f"{value:.4g}"
    text = " ".join(str(value).split())
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def markdown_table(frame: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table of `frame`, its empty columns left out and its numeric
    columns right-aligned, for pasting into an issue or a paper's draft."""
    frame = frame.dropna(axis=1, how="all")
    columns = list(frame.columns)
    lines = [
        "| " + " | ".join(md_cell(column) for column in columns) + " |",
        "|" + "|".join("---:" if column in NUMERIC else "---" for column in columns) + "|",
    ]
    for row in frame.itertuples(index=False):
        cells = [md_cell(_plain(value), column in WHOLE) for column, value in zip(columns, row)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _plain(value: Any) -> Any:
    """NumPy and pandas scalars as Python ones (pd.NA as None), so md_cell reads them as numbers."""
    if value is pd.NA or value is pd.NaT:
        return None
    return value.item() if hasattr(value, "item") else value


def summary_markdown(view: Comparison) -> str:
    """The comparison's summary as Markdown: the per-group table (when grouping), the per-run table
    and the verdicts (the write-up's figure for a preset's group, then the speed sentences), W&B's
    "copy as table" for the Compare page."""
    parts = []
    if view.per_group is not None:
        parts += ["**Per group**", "", markdown_table(view.per_group), ""]
    parts += ["**Per run**", "", markdown_table(view.per_run)]
    verdicts = [*view.reproduction, *view.sentences]
    if verdicts:
        parts += ["", *("- " + md_cell(sentence) for sentence in verdicts)]
    return "\n".join(parts) + "\n"
