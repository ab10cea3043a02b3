"""Queue benchmark: claim latency and throughput with several processes claiming at once.

    python -m db.bench --db postgresql+psycopg://postgres@127.0.0.1:5432/test --claimers 4 --runs 400
    python -m db.bench                      # a temporary SQLite file

Each claimer process loops over one transaction per run (claim_next, then finish) until
the queue is empty, timing every claim. The result says how long a worker waits for its
next run when the queue itself is the only work, which bounds the queue's share of a
real worker's time. Works on a fresh schema of its own (PostgreSQL) or a temporary file.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import create_engine, text

from db import queue
from db.engine import (
    DatabaseUnavailable,
    connect_or_explain,
    make_engine,
    masked_url,
    report_database_error,
    session_factory,
)

CONFIG = {"name": "bench", "max_steps": 1}


def claim_until_empty(url: str, worker_id: str, start, results) -> None:
    """A claimer process: after `start` (a barrier), claim and finish runs until none is left.

    Puts (worker_id, claimed run ids, claim latencies in seconds) on `results`. The race
    test uses it too, which is why it lives in an importable module.
    """
    factory = session_factory(make_engine(url))
    claimed, latencies = [], []
    start.wait(60)
    while True:
        began = time.perf_counter()
        with factory.begin() as session:
            run = queue.claim_next(session, worker_id)
        latencies.append(time.perf_counter() - began)
        if run is None:
            break
        claimed.append(run.id)
        with factory.begin() as session:
            queue.finish(session, run.id, worker_id, {})
    results.put((worker_id, claimed, latencies[:-1]))  # the last look found the queue empty


def measure(url: str, claimers: int, runs: int) -> dict:
    """Fill the queue, race `claimers` processes through it, return latency figures."""
    factory = session_factory(connect_or_explain(url))
    with factory.begin() as session:
        queue.enqueue_many(session, [CONFIG] * runs)
    context = multiprocessing.get_context("spawn")
    results, start = context.Queue(), context.Barrier(claimers + 1)
    processes = [
        context.Process(target=claim_until_empty, args=(url, f"bench-{i}", start, results)) for i in range(claimers)
    ]
    for process in processes:
        process.start()
    start.wait(60)
    began = time.perf_counter()
    latencies = [value for _ in processes for value in results.get(timeout=600)[2]]
    elapsed = time.perf_counter() - began
    for process in processes:
        process.join(60)
    latencies.sort()
    return {
        "claimers": claimers,
        "runs": len(latencies),
        "claims_per_second": len(latencies) / elapsed,
        "p50_ms": 1000 * statistics.median(latencies),
        "p95_ms": 1000 * latencies[int(0.95 * (len(latencies) - 1))],
        "max_ms": 1000 * latencies[-1],
    }


def _fresh_postgres_schema(url: str) -> tuple[str, Callable[[], None]]:
    schema = f"unroll_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(url)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))

    def drop() -> None:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()

    separator = "&" if "?" in url else "?"
    return f"{url}{separator}options=-csearch_path%3D{schema}", drop


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m db.bench",
        description=__doc__.split("\n\n")[0],
        epilog="Exit status: 2 when the database cannot be opened (one line says why; --verbose adds the traceback).",
    )
    parser.add_argument("--db", help="a PostgreSQL URL (a schema is made and dropped) or nothing for SQLite")
    parser.add_argument("--verbose", action="store_true", help="show the traceback of a database error as well")
    parser.add_argument("--claimers", type=int, default=4)
    parser.add_argument("--runs", type=int, default=400)
    args = parser.parse_args(argv)
    try:
        return _bench(args)
    except DatabaseUnavailable as error:
        return report_database_error(error, parser.prog, args.verbose)


def _bench(args: argparse.Namespace) -> int:
    if args.db:  # connect before making a schema there: a bad URL is one line, not a traceback
        connect_or_explain(args.db, migrate=False).dispose()
    cleanup = None
    with tempfile.TemporaryDirectory() as folder:
        if args.db and args.db.startswith("postgresql"):
            url, cleanup = _fresh_postgres_schema(args.db)
        else:
            url = args.db or f"sqlite:///{Path(folder) / 'bench.db'}"
        try:
            figures = measure(url, args.claimers, args.runs)
        finally:
            if cleanup:
                cleanup()
    where = masked_url(args.db) if args.db else "a temporary SQLite file"
    print(
        f"queue on {where}: {figures['claimers']} claimers, "
        f"{figures['runs']} runs: {figures['claims_per_second']:.0f} claims+finishes/s, claim latency "
        f"p50 {figures['p50_ms']:.1f} ms, p95 {figures['p95_ms']:.1f} ms, max {figures['max_ms']:.1f} ms"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
