"""Shared objects for every page: the engine (one per server process) and the local worker."""

from __future__ import annotations

import streamlit as st
from sqlalchemy.orm import Session, sessionmaker

from dashboard import local_worker
from db.engine import database_url, make_engine, session_factory


@st.cache_resource(show_spinner=False)
def _sessions_for(url: str) -> sessionmaker[Session]:
    """One engine and session factory per database URL for the whole server (thread-safe, pooled)."""
    return session_factory(make_engine(url))


def sessions() -> sessionmaker[Session]:
    return _sessions_for(database_url())


@st.cache_resource(show_spinner=False)
def _local_worker(url: str):
    """Started once per server process and database, only when no live worker serves it."""
    return local_worker.ensure_worker(_sessions_for(url), url)


def ensure_local_worker() -> None:
    url = database_url()
    process = _local_worker(url)
    if process is not None and process.poll() is not None:  # it died: let the next rerun start another
        _local_worker.clear()
