"""The worker: claims queued runs and executes them with TensorFlow.

    python -m rnncore.worker [--db URL] [--once] [--max-runs N]

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
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

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
        self.id = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
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
        log.info("run %s (%s): started", run.id, run.name)
        recorder = RunRecorder(self.factory, run.id, self.id, self.heartbeat_seconds).start()
        tail = LogTail()
        logging.getLogger().addHandler(tail)
        try:
            result = self._train(run, recorder)
        finally:
            recorder.close()
            logging.getLogger().removeHandler(tail)
        self._settle(run.id, recorder, result, log_tail=tail.text())
        self.current_run = None
        return result.outcome.value

    def _train(self, run: Run, recorder: RunRecorder) -> RunResult:
        try:
            config = validate_config(run.config)  # the stored row is checked again: it may be tampered with
        except ConfigError as error:
            return RunResult(Outcome.FAILED, error=f"the stored config is invalid: {error}")
        from rnncore import train  # TensorFlow is imported here, never by the dashboard

        def should_stop() -> str | None:
            if self.shutdown.is_set():
                return SHUTDOWN
            if recorder.lost.is_set():
                return RUN_LOST
            return CANCELLED if recorder.cancel.is_set() else None

        def record(step: int, seconds: float, values: dict) -> None:
            recorder.record(step, seconds, values)
            if self.on_step is not None:
                self.on_step(step, seconds, values)

        try:
            return RunResult(Outcome.SUCCEEDED, train.train(config, record, should_stop))
        except train.Interrupted as stop:
            return RunResult(STOPPED_BY_WORKER.get(stop.reason, Outcome.CANCELLED), stop.summary)
        except train.Diverged as diverged:
            return RunResult(Outcome.FAILED, diverged.summary, str(diverged))
        except Exception as error:  # any failure of the run is the run's, not the worker's
            log.exception("run %s failed", run.id)
            return RunResult(Outcome.FAILED, error=_describe_error(error))

    def _settle(self, run_id: int, recorder: RunRecorder, result: RunResult, log_tail: str | None = None) -> None:
        """Record the result through its outcome's transition, retrying a busy database."""
        if result.outcome is Outcome.LOST or recorder.lost.is_set():
            log.warning("run %s was reaped or deleted while training; leaving it as it is", run_id)
            return
        for attempt in range(1, SETTLE_ATTEMPTS + 1):
            try:
                with self.factory.begin() as session:
                    TRANSITIONS[result.outcome](session, run_id, self.id, result, log_tail)
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
        epilog="Exit status: 0 when done, 2 when the options are refused or the database "
        "cannot be opened (one line says why; --verbose adds the traceback).",
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
    args = parser.parse_args(argv)
    if args.max_runs is not None and args.max_runs < 1:
        parser.error("--max-runs must be at least 1")
    if min(args.stale_after, args.heartbeat, args.poll) <= 0:
        parser.error("--stale-after, --heartbeat and --poll must be positive")
    if args.stale_after <= args.heartbeat:
        parser.error("--stale-after must be longer than --heartbeat, or live runs would be reaped")
    return args


def main(argv: list[str] | None = None) -> int:
    from db.engine import DatabaseUnavailable, connect_or_explain, report_database_error

    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:  # open (and migrate) the database first: a bad URL is one line, not a traceback
        connect_or_explain(args.db).dispose()
    except DatabaseUnavailable as error:
        return report_database_error(error, "python -m rnncore.worker", args.verbose)
    worker = Worker(
        args.db,
        stale_after=args.stale_after,
        heartbeat_seconds=args.heartbeat,
        poll_seconds=args.poll,
        parent_pid=args.parent_pid,
    )
    worker.install_signal_handlers()
    worker.serve(once=args.once, max_runs=args.max_runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
