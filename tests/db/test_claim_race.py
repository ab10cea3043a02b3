"""Several processes claim from one queue at once: every run is claimed exactly once."""

import multiprocessing

from sqlalchemy import func, select

from db import queue
from db.bench import claim_until_empty
from db.engine import make_engine, session_factory
from db.models import Run, RunStatus

RUNS = 50


def test_two_processes_racing_for_50_runs_claim_each_exactly_once(db_url):
    factory = session_factory(make_engine(db_url))
    with factory.begin() as session:
        ids = queue.enqueue_many(session, [{"name": f"r{i}", "max_steps": 1} for i in range(RUNS)])
    context = multiprocessing.get_context("spawn")  # the target lives in an importable module
    results, start = context.Queue(), context.Barrier(2)
    racers = [context.Process(target=claim_until_empty, args=(db_url, f"w{i}", start, results)) for i in range(2)]
    for racer in racers:
        racer.start()
    claims = {worker: claimed for worker, claimed, _ in (results.get(timeout=120) for _ in racers)}
    for racer in racers:
        racer.join(30)
    assert claims["w0"], "both racers must have claimed runs for this to be a race"
    assert claims["w1"], "both racers must have claimed runs for this to be a race"
    assert sorted(claims["w0"] + claims["w1"]) == sorted(ids)  # none twice, none missed
    with factory() as session:
        owners = dict(session.execute(select(Run.id, Run.worker_id)).all())
        assert session.scalar(select(func.count()).where(Run.status == RunStatus.SUCCEEDED)) == RUNS
    for worker, claimed in claims.items():
        assert all(owners[run_id] == worker for run_id in claimed)
