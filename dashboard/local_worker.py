"""Start a local worker process when no live worker serves the database.

`streamlit run dashboard/app.py` alone must give a working system, so the dashboard
starts `python -m rnncore.worker` itself when it finds no live worker. The worker is a
separate process (the dashboard never imports TensorFlow) and stops when the dashboard's
process ends. UNROLL_WORKER=off disables this (hosted read-only use, or workers elsewhere).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Optional

from sqlalchemy.orm import Session, sessionmaker

from db import queue

LIVE_WITHIN = timedelta(seconds=15)
LOG_FILE = "unroll-worker.log"


def has_live_worker(factory: sessionmaker[Session]) -> bool:
    with factory() as session:
        return bool(queue.live_workers(session, LIVE_WITHIN))


def start_worker(url: str, log_path: Path = Path(LOG_FILE)) -> subprocess.Popen:
    """A worker child process on `url` that exits with this process; output goes to a log file.

    The URL travels in the environment, not the command line, where `ps` would show a password.
    """
    command = [sys.executable, "-m", "rnncore.worker", "--parent-pid", str(os.getpid())]
    log = open(log_path, "ab")
    return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            env={**os.environ, "UNROLL_DB_URL": url})


def ensure_worker(factory: sessionmaker[Session], url: str) -> Optional[subprocess.Popen]:
    """Start a worker unless one is already alive; returns the process started.

    Whether to start one at all (UNROLL_WORKER, read-only) is Settings.starts_worker's call.
    """
    if has_live_worker(factory):
        return None
    return start_worker(url)


class LocalWorker:
    """The worker this dashboard process started, looked after on every page run.

    The decision is taken again whenever our own worker is not running (at most every
    `recheck_seconds`): a worker that was alive elsewhere at the first page load may stop
    later, and then the dashboard starts its own.
    """

    def __init__(self, recheck_seconds: float = 10.0):
        self.process: Optional[subprocess.Popen] = None
        self.recheck_seconds = recheck_seconds
        self._checked_at = float("-inf")
        self._lock = threading.Lock()

    def ensure(self, factory: sessionmaker[Session], url: str) -> Optional[subprocess.Popen]:
        with self._lock:
            if self.process is not None and self.process.poll() is None:
                return self.process
            if time.monotonic() - self._checked_at < self.recheck_seconds:
                return None
            self._checked_at = time.monotonic()
            self.process = ensure_worker(factory, url)
            return self.process
