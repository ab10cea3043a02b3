"""The worker: claims queued runs and executes them with TensorFlow.

    python -m rnncore.worker [--db URL] [--once] [--max-runs N]
    python -m rnncore.worker --ray ADDRESS [--slots N]    # the runs as Ray tasks (rnncore.ray_executor)

Any number of workers, on any number of machines, can share one database. Each loop
claims the oldest queued run, trains it, and finishes, fails or cancels it. Every
heartbeat also reaps runs whose worker stopped heart-beating, so a lost run is failed on
time even while every live worker is busy on a long run. Training never waits on the database: a recorder thread
takes the points the training loop hands it, writes them in batches, heart-beats, and
polls for a cancel request, so a cancel is seen within about a second.

SIGINT or SIGTERM stops the worker cleanly: the run it holds goes back to the queue
(its partial curve is dropped: it starts over), and the worker deregisters.
"""

from __future__ import annotations

import argparse
import enum
import logging
import os
import signal
import socket
import sys
import threading
import time
import traceback
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from db import queue
from db.engine import make_engine, masked_url, resolve_db_url, session_factory
from db.models import Run
from db.run_config import ConfigError, validate_config
from db.summary import StoredSummary

log = logging.getLogger("unroll.worker")

HEARTBEAT_SECONDS = 2.0
STALE_AFTER_SECONDS = queue.STALE_AFTER_SECONDS
FLUSH_SECONDS = 0.5
POLL_SECONDS = 1.0
SHUTDOWN = "worker shutdown"
CANCELLED = "cancelled"
RUN_LOST = "run taken away"  # reaped or deleted while we trained it
SETTLE_ATTEMPTS = 5
FINAL_FLUSH_ATTEMPTS = 5
LOG_TAIL_LINES = 40


class Outcome(str, enum.Enum):
    """How a run's time with this worker ended; TRANSITIONS says what the queue records for each."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    RELEASED = "released"  # the worker is shutting down: the run goes back to the queue
    LOST = "lost"  # reaped or deleted while it trained: no longer this worker's, nothing to record


# A stop reason that is not a cancel: the run is handed back, or it is no longer ours.
STOPPED_BY_WORKER = {SHUTDOWN: Outcome.RELEASED, RUN_LOST: Outcome.LOST}


@dataclass(frozen=True)
class RunResult:
    """What training one run came to: its outcome, the summary so far (if training started) and
    the error (failed runs)."""

    outcome: Outcome
    summary: StoredSummary | None = None
    error: str | None = None


# (session, run id, worker id, result, log tail): records a result in the queue.
Transition = Callable[[Session, int, str, RunResult, str | None], None]
# The one place an outcome becomes a queue transition; LOST has none (the run is not ours any more).
TRANSITIONS: dict[Outcome, Transition] = {
    Outcome.SUCCEEDED: lambda session, run_id, worker_id, result, log_tail: queue.finish(
        session, run_id, worker_id, result.summary
    ),
    Outcome.FAILED: lambda session, run_id, worker_id, result, log_tail: queue.fail(
        session, run_id, worker_id, result.error, result.summary, log_tail
    ),
    Outcome.CANCELLED: lambda session, run_id, worker_id, result, log_tail: queue.mark_cancelled(
        session, run_id, worker_id, result.summary
    ),
    Outcome.RELEASED: lambda session, run_id, worker_id, result, log_tail: queue.release(session, run_id, worker_id),
}


class LogTail(logging.Handler):
    """The last lines logged in this process while one run trains, stored with the run if it
    fails: the worker's log file is on its own machine, the run's page may be anywhere."""

    def __init__(self, lines: int = LOG_TAIL_LINES):
        super().__init__(logging.INFO)
        self.lines: deque[str] = deque(maxlen=lines)
        self.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))

    def text(self) -> str | None:
        return "\n".join(self.lines) or None


class RunRecorder:
    """Streams one run's points to the database from a background thread.

    The training thread only appends to a list (`record`); the thread flushes every
    FLUSH_SECONDS, heart-beats every HEARTBEAT_SECONDS and polls the cancel flag, so a
    slow database never stalls training. Points that fail to write are kept and retried.
    """

    def __init__(
        self, factory: sessionmaker[Session], run_id: int, worker_id: str, heartbeat_seconds: float = HEARTBEAT_SECONDS
    ):
        self.factory, self.run_id, self.worker_id = factory, run_id, worker_id
        self.heartbeat_seconds = heartbeat_seconds
        self.cancel = threading.Event()
        self.lost = threading.Event()
        self._pending: list[queue.Point] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"recorder-{run_id}", daemon=True)

    def record(self, step: int, seconds: float, values: dict[str, float]) -> None:
        wall = time.time()
        points = [queue.Point(name, step, seconds, value, wall) for name, value in values.items()]
        with self._lock:
            self._pending.extend(points)

    def start(self) -> RunRecorder:
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop the thread and write whatever is still pending, retrying a busy database
        before the run's outcome is recorded (so a finished run never lacks its last points)."""
        self._stop.set()
        self._thread.join()
        for attempt in range(1, FINAL_FLUSH_ATTEMPTS + 1):
            if self._flush():
                return
            time.sleep(0.5 * attempt)
        log.error("run %s: %d points could not be written", self.run_id, len(self._pending))

    def _flush(self) -> bool:
        """Write the pending points; False if they are still pending (kept for the next try)."""
        with self._lock:
            batch, self._pending = self._pending, []
        if not batch or self.lost.is_set():
            return True
        try:
            with self.factory.begin() as session:
                queue.append_metrics(session, self.run_id, self.worker_id, batch)
            return True
        except queue.TransitionError:
            self.lost.set()
            return True
        except SQLAlchemyError as error:
            log.warning("run %s: writing %d points failed, will retry: %s", self.run_id, len(batch), error)
            with self._lock:
                self._pending[:0] = batch
            return False

    def _beat_and_poll(self) -> None:
        try:
            with self.factory.begin() as session:
                queue.heartbeat(session, self.run_id, self.worker_id)
                if queue.cancel_requested(session, self.run_id):
                    self.cancel.set()
        except queue.TransitionError:
            self.lost.set()
        except SQLAlchemyError as error:
            log.warning("run %s: heartbeat failed: %s", self.run_id, error)

    def _poll_cancel(self) -> None:
        try:
            with self.factory() as session:
                if queue.cancel_requested(session, self.run_id):
                    self.cancel.set()
        except SQLAlchemyError as error:
            log.warning("run %s: cancel poll failed: %s", self.run_id, error)

    def _loop(self) -> None:
        last_beat = 0.0
        while not self._stop.wait(FLUSH_SECONDS):
            self._flush()
            if time.monotonic() - last_beat >= self.heartbeat_seconds:
                self._beat_and_poll()
                last_beat = time.monotonic()
            else:
                self._poll_cancel()


# Worker ids (and the Ray executor's "id/N" claim owners) must fit runs.worker_id and workers.id,
# String(64): the host name is cut to leave room for the pid, a random suffix and "/N".
HOST_IN_ID = 40


def worker_id(host: str, pid: int) -> str:
    """`host-pid-random`, unique per process; the full host name is kept in the workers table."""
    return f"{host[:HOST_IN_ID]}-{pid}-{uuid.uuid4().hex[:6]}"


class Worker:
    """One worker process: registration, the claim loop, and the fate of each run."""

    def __init__(
        self,
        url: str | None = None,
        stale_after: float = STALE_AFTER_SECONDS,
        heartbeat_seconds: float = HEARTBEAT_SECONDS,
        poll_seconds: float = POLL_SECONDS,
        parent_pid: int | None = None,
        on_step: Callable[[int, float, dict], None] | None = None,
    ):
        self.url = resolve_db_url(url)
        self.on_step = on_step  # the command line shows progress through this
        self.factory = session_factory(make_engine(self.url))
        self.id = worker_id(socket.gethostname(), os.getpid())
        self.stale_after = timedelta(seconds=stale_after)
        self.heartbeat_seconds = heartbeat_seconds
        self.poll_seconds = poll_seconds
        self.parent_pid = parent_pid
        self.shutdown = threading.Event()
        self.current_run: int | None = None

    # --- lifecycle ---------------------------------------------------------------------

    def install_signal_handlers(self) -> None:
        def stop(signum, _frame):
            log.info(
                "worker %s: %s received, stopping after handing back its run", self.id, signal.Signals(signum).name
            )
            self.shutdown.set()
            signal.signal(signum, signal.SIG_DFL)  # a second signal ends the process at once

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)

    def _parent_gone(self) -> bool:
        """A worker started by the dashboard stops when the dashboard does."""
        return self.parent_pid is not None and os.getppid() != self.parent_pid

    def _heartbeat_loop(self) -> None:
        while not self.shutdown.wait(self.heartbeat_seconds):
            if self._parent_gone():
                log.info("worker %s: parent process %s is gone, stopping", self.id, self.parent_pid)
                self.shutdown.set()
                return
            try:
                with self.factory.begin() as session:
                    queue.worker_heartbeat(session, self.id, self.current_run)
                self.reap()
            except SQLAlchemyError as error:
                log.warning("worker %s: heartbeat failed: %s", self.id, error)

    def reap(self) -> None:
        """Fail the runs of workers that stopped heart-beating (safe while others reap too)."""
        with self.factory.begin() as session:
            for run_id in queue.reap(session, self.stale_after):
                log.warning("run %s failed: its worker stopped heart-beating", run_id)

    def register(self) -> None:
        """Announce this worker and keep its heartbeat going in the background."""
        with self.factory.begin() as session:
            queue.register_worker(session, self.id, socket.gethostname(), os.getpid())
        log.info("worker %s serving %s", self.id, masked_url(self.url))
        threading.Thread(target=self._heartbeat_loop, name="worker-heartbeat", daemon=True).start()

    def deregister(self) -> None:
        self.shutdown.set()
        with self.factory.begin() as session:
            queue.stop_worker(session, self.id)

    def serve(self, once: bool = False, max_runs: int | None = None) -> int:
        """Claim and execute runs until shut down, the queue is empty (once), or max_runs."""
        from rnncore import train  # noqa: F401  import TensorFlow now, not inside the first run's time

        self.register()
        executed = 0
        try:
            while not self.shutdown.is_set() and (max_runs is None or executed < max_runs):
                try:
                    run = self._reap_and_claim()
                except SQLAlchemyError as error:  # the database is away for a moment: wait, then try again
                    log.warning("worker %s: cannot reach the queue, retrying: %s", self.id, error)
                    self.shutdown.wait(self.poll_seconds)
                    continue
                if run is None:
                    if once:
                        break
                    self.shutdown.wait(self.poll_seconds)
                    continue
                self.execute(run)
                executed += 1
        finally:
            self.deregister()
            log.info("worker %s stopped after %d runs", self.id, executed)
        return executed

    def _reap_and_claim(self) -> Run | None:
        self.reap()
        with self.factory.begin() as session:
            return queue.claim_next(session, self.id)

    # --- one run -----------------------------------------------------------------------

    def execute(self, run: Run) -> str:
        """Train one claimed run and record its outcome, returned as its value (an Outcome's
        string, e.g. "succeeded"); never leaves the run running."""
        self.current_run = run.id
        outcome = execute_claimed_run(
            self.factory,
            ClaimedRun.from_row(run),
            self.id,
            heartbeat_seconds=self.heartbeat_seconds,
            shutdown=self.shutdown,
            on_step=self.on_step,
        )
        self.current_run = None
        return outcome.value


@dataclass(frozen=True)
class ClaimedRun:
    """What executing a claimed run needs from its row, as plain data: unlike an ORM row it
    can travel to another process (a Ray task) and means the same there."""

    id: int
    name: str
    config: Any  # the stored JSON as it is: it is validated again before anything trains

    @classmethod
    def from_row(cls, run: Run) -> ClaimedRun:
        return cls(run.id, run.name, run.config)


def execute_claimed_run(
    factory: sessionmaker[Session],
    run: ClaimedRun,
    owner: str,
    *,
    heartbeat_seconds: float = HEARTBEAT_SECONDS,
    shutdown: threading.Event | None = None,
    on_step: Callable[[int, float, dict], None] | None = None,
    summary_extras: Mapping[str, Any] | None = None,
    where: str = "",
) -> Outcome:
    """Train a run claimed by `owner`, stream its points, and record its outcome; never leaves it running.

    The one code path for running a run: the worker calls it in its own process, the Ray
    executor's task on whichever Ray node Ray chose (rnncore.ray_executor), so a run trains,
    records, heart-beats and honours a cancel the same way wherever it runs. `shutdown` set
    hands the run back to the queue; `summary_extras` are stored with the summary (the Ray
    node's id); `where` is said in the log line that starts the run (and so in its log tail).
    """
    recorder = RunRecorder(factory, run.id, owner, heartbeat_seconds).start()
    tail = LogTail()
    logging.getLogger().addHandler(tail)
    try:
        log.info("run %s (%s): started%s", run.id, run.name, where)
        result = _train(run, recorder, shutdown or threading.Event(), on_step)
    finally:
        recorder.close()
        logging.getLogger().removeHandler(tail)
    if summary_extras and result.summary is not None:
        result = replace(result, summary={**result.summary, **summary_extras})
    settle(factory, run.id, owner, recorder.lost.is_set(), result, log_tail=tail.text())
    return result.outcome


def _train(
    run: ClaimedRun,
    recorder: RunRecorder,
    shutdown: threading.Event,
    on_step: Callable[[int, float, dict], None] | None,
) -> RunResult:
    try:
        config = validate_config(run.config)  # the stored row is checked again: it may be tampered with
    except ConfigError as error:
        return RunResult(Outcome.FAILED, error=f"the stored config is invalid: {error}")
    from rnncore import train  # TensorFlow is imported here, never by the dashboard

    def should_stop() -> str | None:
        if shutdown.is_set():
            return SHUTDOWN
        if recorder.lost.is_set():
            return RUN_LOST
        return CANCELLED if recorder.cancel.is_set() else None

    def record(step: int, seconds: float, values: dict) -> None:
        recorder.record(step, seconds, values)
        if on_step is not None:
            on_step(step, seconds, values)

    try:
        return RunResult(Outcome.SUCCEEDED, train.train(config, record, should_stop))
    except train.Interrupted as stop:
        return RunResult(STOPPED_BY_WORKER.get(stop.reason, Outcome.CANCELLED), stop.summary)
    except train.Diverged as diverged:
        return RunResult(Outcome.FAILED, diverged.summary, str(diverged))
    except Exception as error:  # any failure of the run is the run's, not the worker's
        log.exception("run %s failed", run.id)
        return RunResult(Outcome.FAILED, error=_describe_error(error))


def settle(
    factory: sessionmaker[Session],
    run_id: int,
    owner: str,
    taken_away: bool,
    result: RunResult,
    log_tail: str | None = None,
) -> None:
    """Record the result through its outcome's transition, retrying a busy database.

    `taken_away`: the recorder saw the run reaped or deleted while it trained; it is no
    longer `owner`'s, so nothing is recorded whatever the outcome."""
    if result.outcome is Outcome.LOST or taken_away:
        log.warning("run %s was reaped or deleted while training; leaving it as it is", run_id)
        return
    for attempt in range(1, SETTLE_ATTEMPTS + 1):
        try:
            with factory.begin() as session:
                TRANSITIONS[result.outcome](session, run_id, owner, result, log_tail)
            break
        except queue.TransitionError as refused:
            log.warning("run %s: %s", run_id, refused)
            break
        except SQLAlchemyError as failure:  # if this never succeeds, the reaper fails the run later
            log.warning("run %s: recording the outcome failed (attempt %d): %s", run_id, attempt, failure)
            time.sleep(attempt)
    log.info("run %s: %s%s", run_id, result.outcome.value, f" ({result.error})" if result.error else "")


def _describe_error(error: BaseException) -> str:
    """The error's type and message first (what a table shows), then the traceback."""
    headline = f"{type(error).__name__}: {error}"
    return f"{headline}\n\n{''.join(traceback.format_exception(error))}"[:20_000]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m rnncore.worker",
        description=__doc__.split("\n\n")[0],
        epilog="Exit status: 0 when done, 2 when the options are refused, the database "
        "cannot be opened or (--ray) the cluster cannot be joined (one line says why; --verbose adds the traceback).",
    )
    parser.add_argument("--db", help="SQLAlchemy URL (default: UNROLL_DB_URL, else sqlite:///unroll.db)")
    parser.add_argument("--verbose", action="store_true", help="show the traceback of a database error as well")
    parser.add_argument("--once", action="store_true", help="exit when the queue is empty instead of waiting")
    parser.add_argument("--max-runs", type=int, metavar="N", help="exit after executing N runs")
    parser.add_argument(
        "--stale-after",
        type=float,
        default=STALE_AFTER_SECONDS,
        metavar="SECONDS",
        help="fail a running run whose worker has not heart-beaten for this long",
    )
    parser.add_argument(
        "--heartbeat", type=float, default=HEARTBEAT_SECONDS, metavar="SECONDS", help="seconds between heartbeats"
    )
    parser.add_argument(
        "--poll", type=float, default=POLL_SECONDS, metavar="SECONDS", help="seconds between looks at an empty queue"
    )
    parser.add_argument("--parent-pid", type=int, help=argparse.SUPPRESS)  # set by the dashboard
    on_ray = parser.add_argument_group("on a Ray cluster (needs pip install -r requirements-ray.txt)")
    on_ray.add_argument(
        "--ray",
        metavar="ADDRESS",
        help="train the runs as Ray tasks on the cluster at ADDRESS: auto, local (start a Ray here), "
        "ray://HOST:10001 or HOST:PORT",
    )
    on_ray.add_argument(
        "--slots", type=int, metavar="N", help="at most N runs at once (default: what the cluster fits)"
    )
    on_ray.add_argument(
        "--cpus-per-run",
        type=float,
        metavar="C",
        help="CPUs each run asks Ray for (default: UNROLL_RAY_CPUS_PER_RUN, else 1)",
    )
    on_ray.add_argument(
        "--gpus-per-run",
        type=float,
        metavar="G",
        help="GPUs each run asks Ray for (default: UNROLL_RAY_GPUS_PER_RUN, else 0)",
    )
    args = parser.parse_args(argv)
    if args.max_runs is not None and args.max_runs < 1:
        parser.error("--max-runs must be at least 1")
    if min(args.stale_after, args.heartbeat, args.poll) <= 0:
        parser.error("--stale-after, --heartbeat and --poll must be positive")
    if args.stale_after <= args.heartbeat:
        parser.error("--stale-after must be longer than --heartbeat, or live runs would be reaped")
    _check_ray_options(parser, args)
    return args


def _has_password(url: str) -> bool:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return bool(make_url(url).password)
    except ArgumentError:  # not a URL at all: connecting to it says so in one line
        return False


def _check_ray_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse Ray options without --ray, or with values Ray cannot take; sets args.resources for --ray.

    Ray is imported here only when --ray is given: a plain worker never needs it installed."""
    ray_only = [option for option in ("slots", "cpus_per_run", "gpus_per_run") if getattr(args, option) is not None]
    if args.ray is None:
        if ray_only:
            names = ", ".join("--" + option.replace("_", "-") for option in ray_only)
            parser.error(f"{names} only apply with --ray ADDRESS (the runs' Ray tasks)")
        return
    if args.slots is not None and args.slots < 1:
        parser.error(f"--slots must be at least 1 (runs at once on the cluster), not {args.slots}")
    if args.db and _has_password(args.db):
        parser.error(
            "--db: with --ray, give a URL that holds a password through UNROLL_DB_URL, not the command line: "
            "Ray shows the executor's command line as its job's entrypoint (dashboard, ray list jobs)"
        )
    try:
        from rnncore import ray_executor
    except ImportError as missing:
        parser.error(f"--ray needs Ray, which is not installed here ({missing}): pip install -r requirements-ray.txt")
    try:
        args.ray = ray_executor.check_address(args.ray)
        args.resources = ray_executor.run_resources(args.cpus_per_run, args.gpus_per_run)
    except ValueError as refused:
        parser.error(str(refused))


def main(argv: list[str] | None = None) -> int:
    from db.engine import DatabaseUnavailable, connect_or_explain, report_database_error

    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:  # open (and migrate) the database first: a bad URL is one line, not a traceback
        connect_or_explain(args.db).dispose()
    except DatabaseUnavailable as error:
        return report_database_error(error, "python -m rnncore.worker", args.verbose)
    timing = {"stale_after": args.stale_after, "heartbeat_seconds": args.heartbeat, "poll_seconds": args.poll}
    if args.ray is not None:
        return _serve_on_ray(args, timing)
    worker = Worker(args.db, parent_pid=args.parent_pid, **timing)
    worker.install_signal_handlers()
    worker.serve(once=args.once, max_runs=args.max_runs)
    return 0


def _serve_on_ray(args: argparse.Namespace, timing: dict[str, float]) -> int:
    """The dispatcher of rnncore.ray_executor; a cluster that cannot be joined is one line and exit 2."""
    from rnncore.ray_executor import RayExecutor, RayUnavailable

    executor = RayExecutor(args.db, address=args.ray, resources=args.resources, slots=args.slots, **timing)
    try:
        executor.join_ray()
    except RayUnavailable as error:
        if args.verbose:
            traceback.print_exception(error, file=sys.stderr)
        print(f"python -m rnncore.worker: error: {error}", file=sys.stderr)
        return 2
    executor.install_signal_handlers()  # after joining: Ray installs a SIGTERM handler of its own
    executor.serve(once=args.once, max_runs=args.max_runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
