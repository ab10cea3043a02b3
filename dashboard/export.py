"""Exports of a comparison: every point as CSV, and a standalone HTML report (no Streamlit)."""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

import pandas as pd
import plotly.graph_objects as go


def points_csv(points: pd.DataFrame, runs: Sequence[Any]) -> str:
    """All stored points of the runs (not downsampled), with run names and wall-clock times."""
    names = {run.id: _inert_in_spreadsheets(run.name) for run in runs}
    out = points.assign(
        run=points["run_id"].map(names), wall_clock=pd.to_datetime(points["wall"].astype(float), unit="s", utc=True)
    )
    return out[["run_id", "run", "metric", "step", "seconds", "wall_clock", "value"]].to_csv(index=False)


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
