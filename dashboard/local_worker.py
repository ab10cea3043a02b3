"""Start a local worker process when no live worker serves the database, and keep it alive.

`streamlit run dashboard/app.py` alone must give a working system, so the dashboard
starts `python -m rnncore.worker` itself when it finds no live worker. The worker is a
separate process (the dashboard never imports TensorFlow) and stops when the dashboard's
process ends. When it dies (an out-of-memory kill, a crash) the dashboard starts another,
waiting longer after each quick death so a worker that cannot start does not spin.
UNROLL_WORKER=off disables all this (hosted read-only use, or workers elsewhere).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from db import queue

LIVE_WITHIN = timedelta(seconds=15)
LOG_FILE = "unroll-worker.log"
FIRST_BACKOFF_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 60.0
HEALTHY_AFTER_SECONDS = 60.0  # a worker that lived this long resets the back-off
NOTICE_SECONDS = 60.0  # how long the pages mention a death


def has_live_worker(factory: sessionmaker[Session], ignore_pid: int | None = None) -> bool:
    """Whether any worker heart-beat recently; `ignore_pid` is one of ours we know to be dead
    (its last heartbeat still looks recent for a few seconds)."""
    with factory() as session:
        workers = queue.live_workers(session, LIVE_WITHIN)
    here = socket.gethostname()
    return any(not (worker.pid == ignore_pid and worker.host == here) for worker in workers)


def start_worker(
    url: str, stale_after: float = queue.STALE_AFTER_SECONDS, log_path: Path = Path(LOG_FILE)
) -> subprocess.Popen:
    """A worker child process on `url` that exits with this process; output goes to a log file.

    The URL travels in the environment, not the command line, where `ps` would show a password.
    """
    command = [
        sys.executable,
        "-m",
        "rnncore.worker",
        "--parent-pid",
        str(os.getpid()),
        "--stale-after",
        f"{stale_after:g}",
    ]
    log = open(log_path, "ab")  # noqa: SIM115 - the child keeps writing to it after this returns
    return subprocess.Popen(
        command,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "UNROLL_DB_URL": url},
    )


@dataclass(frozen=True)
class WorkerState:
    """What the pages say about the local worker: starting (launched, not yet heart-beating),
    and the last time it died, if it did."""

    starting: bool = False
    notice: str | None = None


class LocalWorker:
    """The worker this dashboard process started, looked after on every live-page tick.

    While our own worker is not running, the decision is taken again at most every
    `recheck_seconds` (a worker alive elsewhere at the first page load may stop later). When
    ours dies it is restarted after a back-off that doubles with each death that came
    soon after its start.
    """

    def __init__(self, recheck_seconds: float = 10.0):
        self.process: subprocess.Popen | None = None
        self.recheck_seconds = recheck_seconds
        self.backoff = FIRST_BACKOFF_SECONDS
        self.notice: str | None = None
        self._started_at = float("-inf")
        self._dead_pid: int | None = None
        self._died_at = float("-inf")
        self._next_check = float("-inf")
        self._lock = threading.Lock()

    def ensure(
        self, factory: sessionmaker[Session], url: str, stale_after: float = queue.STALE_AFTER_SECONDS
    ) -> subprocess.Popen | None:
        with self._lock:
            if self.process is not None and self.process.poll() is None:
                return self.process
            self._note_death()
            if time.monotonic() < self._next_check:
                return None
            self._next_check = time.monotonic() + self.recheck_seconds
            if has_live_worker(factory, ignore_pid=self._dead_pid):
                return None
            self.process = start_worker(url, stale_after)
            self._started_at = time.monotonic()
            return self.process

    def state(self, factory: sessionmaker[Session]) -> WorkerState:
        """Starting: our process runs but has not registered yet (TensorFlow takes seconds to load)."""
        running = self.process is not None and self.process.poll() is None
        starting = running and not has_live_worker(factory)
        recent = time.monotonic() - self._died_at < NOTICE_SECONDS
        return WorkerState(starting=starting, notice=self.notice if recent else None)

    def _note_death(self) -> None:
        """If our worker died since the last look: say so and schedule its restart."""
        if self.process is None:
            return
        self._dead_pid, code = self.process.pid, self.process.returncode
        if time.monotonic() - self._started_at >= HEALTHY_AFTER_SECONDS:
            self.backoff = FIRST_BACKOFF_SECONDS
        delay, self.backoff = self.backoff, min(MAX_BACKOFF_SECONDS, self.backoff * 2)
        self._died_at = time.monotonic()
        self._next_check = self._died_at + delay
        self.notice = (
            f"The local worker (pid {self._dead_pid}) exited with code {code} at "
            f"{time.strftime('%H:%M:%S', time.gmtime())} UTC. Unless another worker is alive, the "
            f"dashboard starts a new one after {delay:.0f} s. Its log: {LOG_FILE}."
        )
        self.process = None
