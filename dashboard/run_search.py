"""The Runs page's cached reads under a view (dashboard.run_filters), keyed by the change token.

Kept apart from dashboard.state so the view's richer filters (text, flags, ranges) reach the
cache as plain strings: the key is the view's canonical URL query, read back here.
"""

from __future__ import annotations

import streamlit as st

from dashboard import queries, run_filters
from dashboard.state import SAFETY_TTL, current_db_url, sessions

PageKey = tuple[tuple[str, tuple[str, ...]], ...]


@st.cache_data(ttl=SAFETY_TTL, show_spinner=False, max_entries=100)
def _run_page(url: str, token: tuple[int, int, int], view: PageKey, offset: int, limit: int) -> queries.RunPage:
    """`url` keys the cache by database; sessions() serves that same database on this rerun."""
    parsed = run_filters.from_query(dict(view))
    with sessions()() as session:
        return queries.run_page(session, parsed.filters, offset, limit, parsed.sort, parsed.descending)


def run_page(token: tuple[int, int, int], view: run_filters.RunsView, offset: int, limit: int) -> queries.RunPage:
    """One page of the Runs table under the view, with the count of every matching run; every
    viewer of one link and store state shares one read."""
    return _run_page(current_db_url(), token, run_filters.cache_key(view), offset, limit)
