"""Small Streamlit helpers shared by the pages."""

from __future__ import annotations

import re

import streamlit as st

from dashboard import charts
from db.summary import RunSummary

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:])")


def md_escape(text: object) -> str:
    """User text made safe for st.markdown-like elements: every markdown character escaped, so a
    name shows exactly as typed (HTML is never enabled for user text anyway)."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", str(text))


def series_figures(run, key: str) -> None:
    """A series run's test instance and generative rollout, side by side (when it has them)."""
    plots = RunSummary.from_stored(run.summary).series
    series = plots.to_stored() if plots is not None else {}
    if not series:
        return
    for place, build, suffix in zip(
        st.columns(2), (charts.series_instance_figure, charts.rollout_figure), ("instance", "rollout")
    ):
        figure = build(series, run.label)
        if figure is not None:
            place.plotly_chart(figure, key=f"{key}_{suffix}_{run.id}", width="stretch")
