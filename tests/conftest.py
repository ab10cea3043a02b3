"""Real databases for the tests: a fresh SQLite file each, and a fresh PostgreSQL schema.

PostgreSQL listens on 127.0.0.1:5432 on the project's machines (trust auth, database
`test`); UNROLL_TEST_PG_URL overrides. Each test run gets its own schema, dropped at
the end. Where the server is unreachable the PostgreSQL cases skip, except in CI
(CI=true), where they fail: a green CI must have exercised PostgreSQL.
"""

from __future__ import annotations

import os
import uuid

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from db.engine import make_engine, session_factory

# Tests use the offline MNIST images (or a cache), never a download; worker subprocesses inherit this.
os.environ.setdefault("UNROLL_MNIST_DOWNLOAD", "off")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

PG_URL = os.environ.get("UNROLL_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@pytest.fixture(scope="session")
def pg_schema_url():
    """A URL whose search_path is a schema made for this test run."""
    admin = create_engine(PG_URL)
    try:
        with admin.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as error:
        admin.dispose()
        message = f"PostgreSQL at {make_url(PG_URL).render_as_string(hide_password=True)} unreachable: {error}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    schema = f"unroll_test_{uuid.uuid4().hex[:10]}"
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    with admin.begin() as connection:
        connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path):
    return f"sqlite:///{tmp_path / 'unroll.db'}"


def _empty_schema(url: str) -> None:
    """PostgreSQL tests share one schema per run: start each test from no rows."""
    engine = make_engine(url)
    with engine.begin() as connection:
        connection.execute(text("TRUNCATE metric_points, runs, workers RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """Each test that takes this runs once on a SQLite file and once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'unroll.db'}"
    url = request.getfixturevalue("pg_schema_url")
    _empty_schema(url)
    return url


@pytest.fixture
def engine(db_url):
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def factory(engine):
    return session_factory(engine)
