"""Shared objects for every page: settings, the engine (one per server process) and the local worker."""

from __future__ import annotations

import os
from typing import Any

import pandas as pd
import streamlit as st
from sqlalchemy.orm import Session, sessionmaker

from dashboard import local_worker, queries
from dashboard.settings import Settings, resolve
from db.engine import make_engine, session_factory

PASSWORD_KEY = "launch_password"


def _secrets() -> dict[str, Any]:
    """Streamlit secrets as a dict; none at all when there is no secrets file."""
    try:
        return dict(st.secrets)
    except Exception:  # noqa: BLE001 - Streamlit raises its own error types for a missing or bad file
        return {}


def settings() -> Settings:
    """Environment variables, else Streamlit secrets (see dashboard.settings); read on every rerun."""
    return resolve(os.environ, _secrets())


def database_url() -> str:
    return settings().db_url


def check_write() -> None:
    """Refuse a change unless this dashboard allows it (read-only mode, launch password)."""
    settings().check_write(st.session_state.get(PASSWORD_KEY))


@st.cache_resource(show_spinner=False)
def _sessions_for(url: str) -> sessionmaker[Session]:
    """One engine and session factory per database URL for the whole server (thread-safe, pooled)."""
    return session_factory(make_engine(url))


def sessions() -> sessionmaker[Session]:
    return _sessions_for(database_url())


@st.cache_resource(show_spinner=False)
def _local_worker(url: str) -> local_worker.LocalWorker:
    """One per server process and database: the worker this dashboard started, if any."""
    return local_worker.LocalWorker()


def ensure_local_worker() -> None:
    """Keep a local worker running while none is alive, unless switched off or read-only
    (a read-only host shows runs; it does not train them)."""
    current = settings()
    if current.starts_worker:
        _local_worker(current.db_url).ensure(_sessions_for(current.db_url), current.db_url)


# --- cached reads (plain arguments only; never a widget inside) -------------------------


@st.cache_data(ttl=2, show_spinner=False)
def _run_infos(url: str, run_ids: tuple[int, ...]) -> list[queries.RunInfo]:
    with _sessions_for(url)() as session:
        return queries.run_infos(session, run_ids)


@st.cache_data(ttl=600, show_spinner=False, max_entries=500)
def _points(url: str, run_id: int, started_at, version: tuple) -> pd.DataFrame:
    """`version` changes whenever the run has new points, so a cached curve is never stale."""
    with _sessions_for(url)() as session:
        return queries.points_frame(session, run_id, started_at)


def run_infos(run_ids) -> list[queries.RunInfo]:
    return _run_infos(database_url(), tuple(int(run_id) for run_id in run_ids))


def points_for(runs) -> pd.DataFrame:
    """The long points table of the runs (see dashboard.charts), cached per run and progress."""
    url = database_url()
    return queries.concat_points([_points(url, run.id, run.started_at, (run.status, run.attempts, run.progress_step))
                                  for run in runs])


@st.cache_data(ttl=2, show_spinner=False)
def _run_choices(url: str) -> list[tuple[int, str]]:
    with _sessions_for(url)() as session:
        return [(row["id"], f"#{row['id']} {row['name']}") for row in queries.run_rows(session)]


def run_choices() -> list[tuple[int, str]]:
    """(id, label) of every run, newest first, for pickers."""
    return _run_choices(database_url())
