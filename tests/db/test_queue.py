"""The queue's status lifecycle on real SQLite files and a real PostgreSQL schema."""

import math
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from db import queue
from db.models import MetricPoint, Run, RunStatus, utcnow
from db.run_config import ConfigError

CONFIG = {"name": "tiny", "max_steps": 5}


def enqueue(factory, count=1, **changes):
    with factory.begin() as session:
        return queue.enqueue_many(session, [{**CONFIG, **changes}] * count, group="g")


def claim(factory, worker="w1"):
    with factory.begin() as session:
        run = queue.claim_next(session, worker)
        return None if run is None else run.id


def status(factory, run_id):
    with factory() as session:
        return session.get(Run, run_id).status


def points(n, start=1, name="loss"):
    return [queue.Point(name, step, step * 0.1, 1.0 / step) for step in range(start, start + n)]


def test_a_run_goes_from_queued_to_succeeded_with_its_curve_and_summary(factory):
    [run_id] = enqueue(factory)
    assert status(factory, run_id) == RunStatus.QUEUED
    assert claim(factory) == run_id
    with factory.begin() as session:
        run = session.get(Run, run_id)
        assert (run.status, run.worker_id, run.attempts) == (RunStatus.RUNNING, "w1", 1)
        assert run.started_at is not None
        assert run.heartbeat_at is not None
        queue.heartbeat(session, run_id, "w1")
        queue.append_metrics(session, run_id, "w1", points(3))
        queue.append_metrics(session, run_id, "w1", points(2, start=4))
        queue.finish(session, run_id, "w1", {"test_accuracy": 0.9})
    with factory() as session:
        run = session.get(Run, run_id)
        assert run.status == RunStatus.SUCCEEDED
        assert run.summary == {"test_accuracy": 0.9}
        assert run.finished_at >= run.started_at
        assert run.progress_step == 5
        assert run.latest == {"loss": 0.2}
        curve = queue.load_curves(session, run_id)["loss"]
    assert curve.steps == [1, 2, 3, 4, 5]
    assert curve.values == pytest.approx([1.0, 0.5, 1 / 3, 0.25, 0.2])


def test_claim_takes_the_oldest_and_returns_none_when_empty(factory):
    first, second = enqueue(factory, 2)
    assert claim(factory) == first
    assert claim(factory, "w2") == second
    assert claim(factory) is None


@pytest.mark.parametrize("action", ["finish", "fail", "mark_cancelled", "release", "heartbeat"])
def test_worker_transitions_refuse_a_run_the_worker_does_not_hold(factory, action):
    queued, running = enqueue(factory, 2)
    with factory.begin() as session:
        session.execute(update(Run).where(Run.id == running).values(status=RunStatus.RUNNING, worker_id="w1"))
    args = {"finish": ({},), "fail": ("boom",)}.get(action, ())
    for run_id, worker in [(queued, "w1"), (running, "someone-else"), (999, "w1")]:
        with factory.begin() as session, pytest.raises(queue.TransitionError):
            getattr(queue, action)(session, run_id, worker, *args)
    assert status(factory, queued) == RunStatus.QUEUED
    assert status(factory, running) == RunStatus.RUNNING


def test_a_finished_run_cannot_finish_or_fail_again(factory):
    [run_id] = enqueue(factory)
    claim(factory)
    with factory.begin() as session:
        queue.finish(session, run_id, "w1", {})
    for action, args in [("finish", ({},)), ("fail", ("late",)), ("append_metrics", (points(1),))]:
        with factory.begin() as session, pytest.raises(queue.TransitionError, match="succeeded"):
            getattr(queue, action)(session, run_id, "w1", *args)
    with factory() as session:
        assert session.get(Run, run_id).error is None


def test_cancel_of_a_queued_run_is_immediate(factory):
    [run_id] = enqueue(factory)
    with factory.begin() as session:
        assert queue.request_cancel(session, run_id) == RunStatus.CANCELLED
    assert status(factory, run_id) == RunStatus.CANCELLED
    assert claim(factory) is None


def test_cancel_of_a_running_run_asks_its_worker(factory):
    [run_id] = enqueue(factory)
    claim(factory)
    with factory.begin() as session:
        assert not queue.cancel_requested(session, run_id)
        assert queue.request_cancel(session, run_id) == RunStatus.RUNNING
        assert queue.cancel_requested(session, run_id)
        queue.mark_cancelled(session, run_id, "w1", {"steps": 3})
    assert status(factory, run_id) == RunStatus.CANCELLED
    with factory.begin() as session, pytest.raises(queue.TransitionError, match="cancelled"):
        queue.request_cancel(session, run_id)


def test_cancels_requested_reads_many_runs_at_once_with_their_steps(factory):
    asked, busy, untouched = enqueue(factory, 3)
    for _ in range(3):
        claim(factory)
    with factory.begin() as session:
        queue.append_metrics(session, busy, "w1", points(4))
        assert queue.cancels_requested(session, [asked, busy, untouched]) == {}
        queue.request_cancel(session, asked)
        queue.request_cancel(session, busy)
    with factory() as session:
        assert queue.cancels_requested(session, [asked, busy, untouched]) == {asked: 0, busy: 4}
        assert queue.cancels_requested(session, []) == {}


def test_retry_puts_a_failed_run_back_as_new_and_the_new_attempt_has_only_its_own_curve(factory):
    [run_id] = enqueue(factory)
    claim(factory)
    with factory.begin() as session:
        queue.append_metrics(session, run_id, "w1", points(4))
        queue.fail(session, run_id, "w1", "boom", {"steps": 4}, log_tail="last words")
    with factory.begin() as session:
        queue.retry(session, run_id)
        run = session.get(Run, run_id)
        # Nothing of the failed attempt lingers beside "queued": no steps, loss, summary or error.
        assert (run.status, run.error, run.worker_id, run.progress_step, run.latest, run.summary, run.log_tail) == (
            RunStatus.QUEUED,
            None,
            None,
            None,
            None,
            None,
            None,
        )
        assert queue.load_curves(session, run_id) == {}
    assert claim(factory, "w2") == run_id
    with factory.begin() as session:
        run = session.get(Run, run_id)
        assert (run.attempts, run.worker_id, run.progress_step) == (2, "w2", None)
        queue.append_metrics(session, run_id, "w2", points(2))
        assert len(queue.load_curves(session, run_id)["loss"].steps) == 2


def test_retry_refuses_succeeded_queued_and_running_runs(factory):
    queued, running, succeeded = enqueue(factory, 3)
    with factory.begin() as session:
        session.execute(update(Run).where(Run.id == running).values(status=RunStatus.RUNNING, worker_id="w"))
        session.execute(update(Run).where(Run.id == succeeded).values(status=RunStatus.SUCCEEDED))
    for run_id, word in [(queued, "queued"), (running, "running"), (succeeded, "succeeded"), (12345, "does not exist")]:
        with factory.begin() as session, pytest.raises(queue.TransitionError, match=word):
            queue.retry(session, run_id)


def test_run_again_makes_a_new_linked_run_and_leaves_the_finished_one_untouched(factory):
    [run_id] = enqueue(factory)
    claim(factory)
    with factory.begin() as session:
        queue.append_metrics(session, run_id, "w1", points(3))
        queue.finish(session, run_id, "w1", {"steps": 3})
    with factory.begin() as session:
        again = queue.rerun(session, run_id)
    with factory() as session:
        original, new = session.get(Run, run_id), session.get(Run, again)
        assert again > run_id
        assert new.rerun_of == run_id
        assert (new.status, new.config, new.group_name) == (RunStatus.QUEUED, original.config, original.group_name)
        assert (original.status, original.summary) == (RunStatus.SUCCEEDED, {"steps": 3})
        assert len(queue.load_curves(session, run_id)["loss"].steps) == 3
    with factory.begin() as session, pytest.raises(queue.TransitionError, match="queued"):
        queue.rerun(session, again)  # not finished yet
    with factory.begin() as session, pytest.raises(queue.QueueFullError):
        queue.rerun(session, run_id, max_queued=1)


def test_run_ids_are_never_reused_after_a_delete(factory):
    first, highest = enqueue(factory, 2)
    with factory.begin() as session:
        queue.delete_run(session, highest)
    [new] = enqueue(factory)
    assert new > highest > first


def test_the_change_token_moves_with_every_change_but_not_with_heartbeats(factory):
    def token():
        with factory() as session:
            return queue.change_token(session)

    empty = token()
    [run_id] = enqueue(factory)
    queued = token()
    claim(factory)
    claimed = token()
    with factory.begin() as session:
        queue.heartbeat(session, run_id, "w1")
    assert token() == claimed  # nothing a page shows changed
    with factory.begin() as session:
        queue.append_metrics(session, run_id, "w1", points(2))
    recorded = token()
    with factory.begin() as session:
        queue.finish(session, run_id, "w1", {})
    finished = token()
    with factory.begin() as session:
        queue.delete_run(session, run_id)
    tokens = [empty, queued, claimed, recorded, finished, token()]
    # A page compares with the token it saw last: each must differ from the one before.
    assert all(before != after for before, after in zip(tokens, tokens[1:]))
    assert len(set(tokens[:-1])) == 5


def test_a_cancel_requested_while_a_worker_shuts_down_is_not_lost(factory):
    [run_id] = enqueue(factory)
    claim(factory)
    with factory.begin() as session:
        queue.request_cancel(session, run_id)
        queue.release(session, run_id, "w1")
    with factory() as session:
        run = session.get(Run, run_id)
        assert run.status == RunStatus.CANCELLED
        assert run.finished_at is not None
    assert claim(factory, "w2") is None


def test_release_hands_a_run_back_to_the_queue(factory):
    [run_id] = enqueue(factory)
    claim(factory)
    with factory.begin() as session:
        queue.append_metrics(session, run_id, "w1", points(3))
        queue.release(session, run_id, "w1")
    with factory() as session:
        run = session.get(Run, run_id)
        assert (run.status, run.progress_step, run.latest, run.started_at) == (RunStatus.QUEUED, None, None, None)
        assert queue.load_curves(session, run_id) == {}  # a queued run shows no curve of an attempt that ended
    assert claim(factory, "w2") == run_id


def test_reap_fails_runs_whose_worker_went_silent_and_keeps_their_points(factory):
    stale, fresh = enqueue(factory, 2)
    claim(factory, "dead")
    claim(factory, "alive")
    with factory.begin() as session:
        queue.append_metrics(session, stale, "dead", points(7))
        session.execute(update(Run).where(Run.id == stale).values(heartbeat_at=utcnow() - timedelta(minutes=5)))
    with factory.begin() as session:
        assert queue.reap(session, timedelta(seconds=60)) == [stale]
    with factory() as session:
        run = session.get(Run, stale)
        assert run.status == RunStatus.FAILED
        assert run.error.startswith(queue.WORKER_LOST)
        assert len(queue.load_curves(session, stale)["loss"].steps) == 7
        assert session.get(Run, fresh).status == RunStatus.RUNNING
    with factory.begin() as session, pytest.raises(queue.TransitionError):  # the silent worker cannot write any more
        queue.append_metrics(session, stale, "dead", points(1, start=8))


def test_bad_configs_are_refused_and_nothing_is_stored(factory):
    with factory.begin() as session, pytest.raises(ConfigError) as refused:
        queue.enqueue_many(session, [CONFIG, {**CONFIG, "hidden_units": 0}])
    assert refused.value.errors[0][0] == "hidden_units"
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(Run)) == 0


def test_the_queue_limit_refuses_a_launch_that_would_not_fit(factory):
    enqueue(factory, 3)
    with factory.begin() as session, pytest.raises(queue.QueueFullError, match="at most 4"):
        queue.enqueue_many(session, [CONFIG] * 2, max_queued=4)
    with factory() as session:
        assert queue.count_queued(session) == 3


def test_a_nan_loss_is_kept_as_a_point(factory):
    [run_id] = enqueue(factory)
    claim(factory)
    with factory.begin() as session:
        queue.append_metrics(
            session,
            run_id,
            "w1",
            [
                queue.Point("loss", 1, 0.0, 2.0),
                queue.Point("loss", 2, 0.1, math.nan),
                queue.Point("loss", 3, 0.2, math.inf),
            ],
        )
        queue.finish(session, run_id, "w1", {"test_mse": math.inf, "nested": [math.nan, 1.0]})
    with factory() as session:
        values = queue.load_curves(session, run_id)["loss"].values
        run = session.get(Run, run_id)
    assert values[0] == 2.0
    assert math.isnan(values[1])
    assert values[2] == math.inf
    assert run.latest == {"loss": None}  # JSON has no infinity: the table shows "not finite" as empty
    assert run.summary == {"test_mse": None, "nested": [None, 1.0]}


def test_delete_removes_a_finished_run_with_its_points_but_refuses_a_running_one(factory):
    done, running = enqueue(factory, 2)
    claim(factory)
    with factory.begin() as session:
        queue.append_metrics(session, done, "w1", points(3))
        queue.finish(session, done, "w1", {})
    claim(factory)
    with factory.begin() as session:
        queue.delete_run(session, done)
    with factory.begin() as session, pytest.raises(queue.TransitionError, match="running"):
        queue.delete_run(session, running)
    with factory() as session:
        assert session.get(Run, done) is None
        assert session.scalar(select(func.count()).select_from(MetricPoint)) == 0


def test_workers_register_heartbeat_and_stop(factory):
    with factory.begin() as session:
        queue.register_worker(session, "w1", "host", 123)
        queue.register_worker(session, "w2", "host", 124)
        queue.worker_heartbeat(session, "w1", 7)
        queue.stop_worker(session, "w2")
    with factory() as session:
        live = queue.live_workers(session, timedelta(seconds=30))
    assert [(w.id, w.current_run_id) for w in live] == [("w1", 7)]


def test_a_curve_of_100000_points_loads_in_step_order(factory):
    [run_id] = enqueue(factory)
    claim(factory)
    with factory.begin() as session:
        for start in range(1, 50_001, 10_000):
            queue.append_metrics(session, run_id, "w1", points(10_000, start) + points(10_000, start, name="accuracy"))
    with factory() as session:
        curves = queue.load_curves(session, run_id)
    assert sorted(curves) == ["accuracy", "loss"]
    assert sum(len(curve.steps) for curve in curves.values()) == 100_000
    assert curves["loss"].steps == list(range(1, 50_001))
