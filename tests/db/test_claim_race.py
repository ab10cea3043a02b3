"""Several processes claim from one queue at once: every run is claimed exactly once."""

import multiprocessing

from sqlalchemy import func, select

from db import queue
from db.engine import make_engine, session_factory
from db.models import Run, RunStatus

RUNS = 50


def _claim_until_empty(url, worker_id, start, results):
    factory = session_factory(make_engine(url))
    claimed = []
    start.wait(60)  # both racers are connected before either claims
    while True:
        with factory.begin() as session:
            run = queue.claim_next(session, worker_id)
            if run is None:
                break
            claimed.append(run.id)
            queue.finish(session, run.id, worker_id, {})
    results.put((worker_id, claimed))


def test_two_processes_racing_for_50_runs_claim_each_exactly_once(db_url):
    factory = session_factory(make_engine(db_url))
    with factory.begin() as session:
        ids = queue.enqueue_many(session, [{"name": f"r{i}", "max_steps": 1} for i in range(RUNS)])
    context = multiprocessing.get_context("spawn")
    results, start = context.Queue(), context.Barrier(2)
    racers = [context.Process(target=_claim_until_empty, args=(db_url, f"w{i}", start, results)) for i in range(2)]
    for racer in racers:
        racer.start()
    claims = dict(results.get(timeout=120) for _ in racers)
    for racer in racers:
        racer.join(30)
    everything = claims["w0"] + claims["w1"]
    assert claims["w0"] and claims["w1"], "both racers must have claimed runs for this to be a race"
    assert sorted(everything) == sorted(ids)  # none twice, none missed
    with factory() as session:
        owners = dict(session.execute(select(Run.id, Run.worker_id)).all())
        assert session.scalar(select(func.count()).where(Run.status == RunStatus.SUCCEEDED)) == RUNS
    for worker, claimed in claims.items():
        assert all(owners[run_id] == worker for run_id in claimed)
