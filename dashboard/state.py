"""Shared objects for every page: settings, the engine (one per server process) and the local worker."""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
from datetime import timedelta
from typing import Any

import pandas as pd
import streamlit as st
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from dashboard import comparison, local_worker, queries
from dashboard.settings import Settings, resolve
from dashboard.ui import md_escape
from db import queue
from db.engine import connect_or_explain, describe_database_error, session_factory

PASSWORD_KEY = "launch_password"
REFRESH_SECONDS = 2  # how often a live view polls the store's change token
log = logging.getLogger("unroll.dashboard")


def _secrets() -> dict[str, Any]:
    """Streamlit secrets as a dict; none at all when there is no secrets file."""
    try:
        return dict(st.secrets)
    except Exception:
        return {}


def settings() -> Settings:
    """Environment variables, else Streamlit secrets (see dashboard.settings); read on every rerun."""
    return resolve(os.environ, _secrets())


def current_db_url() -> str:
    """The database this dashboard serves now (settings are read on every rerun)."""
    return settings().db_url


@st.cache_resource(show_spinner=False)
def _sessions_for(url: str) -> sessionmaker[Session]:
    """One engine and session factory per database URL for the whole server (thread-safe, pooled)."""
    return session_factory(connect_or_explain(url))  # DatabaseUnavailable: one sentence


def sessions() -> sessionmaker[Session]:
    return _sessions_for(current_db_url())


@st.cache_resource(show_spinner=False)
def _local_worker(url: str) -> local_worker.LocalWorker:
    """One per server process and database: the worker this dashboard started, if any."""
    return local_worker.LocalWorker()


def ensure_local_worker() -> None:
    """Keep a local worker running while none is alive, unless switched off or read-only
    (a read-only host shows runs; it does not train them)."""
    current = settings()
    if current.starts_worker:
        _local_worker(current.db_url).ensure(_sessions_for(current.db_url), current.db_url, current.stale_after)


def local_worker_state() -> local_worker.WorkerState | None:
    """The local worker's state for the pages, or None when this dashboard starts none."""
    current = settings()
    if not current.starts_worker:
        return None
    return _local_worker(current.db_url).state(_sessions_for(current.db_url))


class _Reaper:
    """Fails runs whose worker went silent, at most once a second per server process: a
    SIGKILLed worker's run must turn "worker lost" even when no other worker is alive."""

    def __init__(self):
        self._lock = threading.Lock()
        self._last = float("-inf")

    def reap(self, factory: sessionmaker[Session], stale_after: float) -> None:
        with self._lock:
            if time.monotonic() - self._last < 1.0:
                return
            self._last = time.monotonic()
        try:
            with factory.begin() as session:
                queue.reap(session, timedelta(seconds=stale_after))
        except SQLAlchemyError as error:  # a busy or unreachable database: the next tick tries again
            log.warning("reaping stale runs failed: %s", error)


@st.cache_resource(show_spinner=False)
def _reaper(url: str) -> _Reaper:
    return _Reaper()


def database_trouble(error: SQLAlchemyError, retried: bool = True) -> None:
    """A database that stopped answering mid-session (a PostgreSQL restart, a lock held past the
    busy timeout): one sentence on the page instead of a traceback. A live view tries again on
    its next tick; the rest of a page on the next reload."""
    log.warning("the dashboard could not read the database: %s", error)
    sentence = describe_database_error(error, current_db_url()).replace("cannot open", "cannot read", 1)
    again = f"Trying again every {REFRESH_SECONDS} s." if retried else "Reload the page to try again."
    st.warning(f"{md_escape(sentence)}. {again}")


def live_view(draw):
    """A live view's tick that survives a database outage (see database_trouble)."""

    @functools.wraps(draw)
    def tick(*args, **kwargs):
        try:
            return draw(*args, **kwargs)
        except SQLAlchemyError as error:
            database_trouble(error)

    return tick


@st.fragment(run_every=REFRESH_SECONDS)
@live_view
def follow_changes(seen: tuple) -> None:
    """A page's pulse, drawing nothing: a tick where the store did not change costs one token
    read; any change (a new point, a finished, failed or deleted run, from any process) redraws
    the whole page from the shared caches, so nothing shown is older than one refresh."""
    if watch() != seen:
        st.rerun(scope="app")


def watch() -> tuple[int, int, int]:
    """Every live view's tick: keep the local worker alive, fail runs whose worker went silent,
    and return the store's change token. Pages read through caches keyed by the token, so a
    tick where nothing changed reads no run again: it costs the token's aggregate, a look for
    stale runs on their index and the workers' health."""
    current = settings()
    factory = _sessions_for(current.db_url)
    ensure_local_worker()
    if not current.readonly:  # a read-only dashboard writes nothing, housekeeping included
        _reaper(current.db_url).reap(factory, current.stale_after)
    with factory() as session:
        return queue.change_token(session)


# --- cached reads, keyed by the change token (plain arguments only; never a widget inside) --


# Token-keyed caches also expire after SAFETY_TTL: a writer that bypasses change_count (raw SQL
# in psql, a worker of an older release) is seen within a minute instead of never.
SAFETY_TTL = 60


@st.cache_data(ttl=SAFETY_TTL, show_spinner=False, max_entries=200)
def _run_infos(url: str, run_ids: tuple[int, ...], token: tuple) -> list[queries.RunInfo]:
    with _sessions_for(url)() as session:
        return queries.run_infos(session, run_ids)


@st.cache_data(ttl=600, show_spinner=False, max_entries=500)
def _points(url: str, run_id: int, started_at, version: tuple) -> pd.DataFrame:
    """`version` changes whenever the run has new points, so a cached curve is never stale."""
    with _sessions_for(url)() as session:
        return queries.points_frame(session, run_id, started_at)


def run_infos(run_ids, token: tuple) -> list[queries.RunInfo]:
    """The runs with these ids, in that order (ids that do not exist are left out)."""
    return _run_infos(current_db_url(), tuple(int(run_id) for run_id in run_ids), token)


def points_for(runs) -> pd.DataFrame:
    """The long points table of the runs (see dashboard.charts), cached per run and progress."""
    url = current_db_url()
    return queries.concat_points(
        [_points(url, run.id, run.started_at, (run.status, run.attempts, run.progress_step)) for run in runs]
    )


@st.cache_data(ttl=SAFETY_TTL, show_spinner=False, max_entries=50)
def _run_choices(url: str, token: tuple, include: tuple[int, ...]) -> list[tuple[int, str]]:
    with _sessions_for(url)() as session:
        return queries.run_labels(session, include=include)


def run_choices(token: tuple, include=()) -> list[tuple[int, str]]:
    """(id, label) of the newest runs for pickers, plus the runs of `include` (ids from a link),
    however old: a picker must never make an existing run unreachable."""
    return _run_choices(current_db_url(), token, tuple(sorted({int(run_id) for run_id in include})))


@st.cache_data(ttl=SAFETY_TTL, show_spinner=False, max_entries=20)
def _filter_options(url: str, token: tuple) -> dict[str, list]:
    with _sessions_for(url)() as session:
        return queries.filter_options(session)


def filter_options(token: tuple) -> dict[str, list]:
    return _filter_options(current_db_url(), token)


# A run's repr holds every field: hashing it is 7x faster than Streamlit hashing each field (2 ms
# for 20 runs with their summaries), and the key is computed on every rerun of every viewer.
@st.cache_resource(show_spinner=False, max_entries=32, ttl=SAFETY_TTL, hash_funcs={queries.RunInfo: repr})
def _comparison(url: str, runs: tuple[queries.RunInfo, ...], view: tuple) -> comparison.Comparison:
    """Built once per state of the compared runs and view, shared by every session (cache_resource:
    no copy per viewer). Thirty people opening one link cost one build.

    Keyed by the runs as read under the current token (every field of each), not by the token
    itself: a new point of a compared run changes its progress and with it the key, so nothing
    shown is older than one refresh, while a run training elsewhere, which moves the token at
    every point it records, does not rebuild this view (for 20 runs of 20,000 points a build
    takes 0.22 s of CPU, once per view and refresh, from the two cores the worker trains on)."""
    return comparison.compare(list(runs), points_for(runs), dict(view))


def comparison_for(token: tuple, state: dict) -> comparison.Comparison:
    """The Compare page's figures and tables for these runs and settings (see _comparison)."""
    view = tuple(sorted((key, value) for key, value in state.items() if key != "runs"))
    return _comparison(current_db_url(), tuple(run_infos(state["runs"], token)), view)


def worker_health():
    """Live workers and stranded runs: read on every tick (heartbeat ages must move)."""
    current = settings()
    with _sessions_for(current.db_url)() as session:
        return queries.worker_health(session, local_worker.LIVE_WITHIN)
