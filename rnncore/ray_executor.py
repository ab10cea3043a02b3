"""The Ray executor: the database queue stays the source of truth, Ray places the runs.

    python -m rnncore.worker --ray ADDRESS [--slots N] [--cpus-per-run C] [--gpus-per-run G]

One dispatcher process (RayExecutor) joins a Ray cluster and, as Ray capacity frees up,
claims queued runs from the store, never more than the cluster's alive nodes can start at
once (so waiting runs stay visible as queued in the dashboard, not hidden in Ray's own
queue), and submits each as a Ray task. The task runs `rnncore.worker.execute_claimed_run`,
the code a hand-started worker runs: on whichever node Ray placed it, it trains, streams its
points and its outcome straight to the database, heart-beats and polls for a cancel.

What the dispatcher adds is what only it can know, from Ray:
* a task Ray lost (its node died, its worker process crashed or was killed) fails its run
  "worker lost" as soon as Ray reports it, keeping the points already written, instead of
  after the heartbeat timeout;
* a cancel the task has not honoured within its grace (`cancel_grace_seconds`: a second, or two
  of the run's steps when they are longer; a task stuck in a long graph trace, a hung process)
  is forced with `ray.cancel`;
* between the claim and the task's first heartbeat (Ray still placing it, a worker process
  starting), the dispatcher heart-beats the run, so a slow start is not reaped as lost;
* it asks Ray's autoscaler (KubeRay's) for room for every queued run, so the cluster grows
  for the queue while the runs themselves wait in the store;
* SIGINT or SIGTERM hands its runs back to the queue, as a worker does.

No run is executed twice at once: Ray never retries a task (max_retries=0), and each claim
has an owner id of its own (the dispatcher's id and a claim number), so the queue's guarded
transitions refuse any write from a task whose run was taken away. If the dispatcher itself
dies, Ray ends the tasks it owns; their runs stop heart-beating and are reaped as usual.

The database URL reaches the tasks through Ray's object store (one `ray.put`): a task's
arguments hold only the reference, so the password is in no task argument Ray records,
logs or shows. This module is the only one that imports Ray; the worker imports it only
for --ray, and db/ and dashboard/ never import Ray (import-linter contracts).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import math
import os
import re
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import ray
from ray import exceptions as ray_errors
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from db import queue
from db.engine import make_engine, masked_url, session_factory
from rnncore.worker import (
    HEARTBEAT_SECONDS,
    POLL_SECONDS,
    STALE_AFTER_SECONDS,
    ClaimedRun,
    Worker,
    execute_claimed_run,
)

log = logging.getLogger("unroll.ray")

TICK_SECONDS = 0.25  # how often the dispatcher looks at its tasks and their cancels
CANCEL_GRACE_SECONDS = 1.0  # at least this long after its cancel was seen, a task still running is ray.cancel-led
AUTOSCALER_SECONDS = 2.0  # how often the autoscaler is told how many runs want to run
MOST_RUNS_ASKED_FOR = 1000  # a queue of 10,000 runs asks for 1,000 at once, not 10,000
HAND_BACK_SECONDS = 15.0  # on shutdown: how long to wait for cancelled tasks to end before handing runs back
CONNECT_TIMEOUT_SECONDS = 5.0  # how long a HOST:PORT address may take to accept a connection
NODE_KEY = "ray_node_id"  # the summary key naming the Ray node that trained the run
CPUS_SETTING, GPUS_SETTING = "UNROLL_RAY_CPUS_PER_RUN", "UNROLL_RAY_GPUS_PER_RUN"
ADDRESS_RULE = "auto, local, ray://HOST:PORT (Ray Client) or HOST:PORT (a head's GCS address)"
_HOST_PORT = re.compile(r"(?:ray://)?(?:[A-Za-z0-9][A-Za-z0-9.-]*|\[[0-9A-Fa-f:.]+\]):(?P<port>\d{1,5})")


class RayUnavailable(RuntimeError):
    """The dispatcher cannot join the Ray cluster; the message is one line naming the address."""


def check_address(address: str) -> str:
    """The --ray address as ray.init takes it; ValueError saying what is allowed otherwise."""
    text = address.strip()
    if text in ("auto", "local"):
        return text
    found = _HOST_PORT.fullmatch(text)
    if found and 1 <= int(found["port"]) <= 65535:
        return text
    raise ValueError(f"--ray must be {ADDRESS_RULE}, not {address!r}")


@dataclass(frozen=True)
class RunResources:
    """What each run asks Ray for: CPUs (UNROLL_RAY_CPUS_PER_RUN, default 1) and GPUs (default none)."""

    cpus: float = 1.0
    gpus: float = 0.0

    def runs_that_fit(self, node: Mapping[str, float]) -> int:
        """How many runs at once a node with these total resources can hold."""
        fits = math.floor(node.get("CPU", 0.0) / self.cpus + 1e-9)
        if self.gpus > 0:
            fits = min(fits, math.floor(node.get("GPU", 0.0) / self.gpus + 1e-9))
        return fits

    def bundle(self) -> dict[str, float]:
        """The request as Ray's autoscaler reads a resource shape."""
        return {"CPU": self.cpus, **({"GPU": self.gpus} if self.gpus > 0 else {})}

    def describe(self) -> str:
        return f"{self.cpus:g} CPU" + (f" and {self.gpus:g} GPU" if self.gpus else "")


def _resource_amount(
    given: float | None, option: str, setting: str, default: float, environ: Mapping[str, str]
) -> tuple[float, str]:
    """(the amount, the name to blame in a message): the option, else the setting, else the default."""
    if given is not None:
        return given, option
    text = environ.get(setting)
    if text is None or not text.strip():
        return default, setting
    try:
        return float(text), setting
    except ValueError:
        raise ValueError(f"{setting} must be a number, not {text!r}") from None


def run_resources(
    cpus: float | None = None, gpus: float | None = None, environ: Mapping[str, str] = os.environ
) -> RunResources:
    """The per-run request from --cpus-per-run / --gpus-per-run, else the settings, else 1 CPU and no GPU.

    ValueError names the option or setting and what it takes."""
    cpus, cpus_from = _resource_amount(cpus, "--cpus-per-run", CPUS_SETTING, 1.0, environ)
    gpus, gpus_from = _resource_amount(gpus, "--gpus-per-run", GPUS_SETTING, 0.0, environ)
    if not (math.isfinite(cpus) and cpus > 0):
        raise ValueError(f"{cpus_from} must be a positive number of CPUs (e.g. 1 or 0.5), not {cpus:g}")
    if not (math.isfinite(gpus) and gpus >= 0):
        raise ValueError(f"{gpus_from} must be 0 (no GPU) or a positive number of GPUs (e.g. 1), not {gpus:g}")
    return RunResources(cpus, gpus)


def task_db_url(url: str) -> str:
    """The URL as a task on another process must read it: a relative SQLite path is made
    absolute (Ray starts its workers in a folder of its own)."""
    parsed = make_url(url)
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:" or Path(database).is_absolute():
        return url
    return parsed.set(database=str(Path(database).resolve())).render_as_string(hide_password=False)


# --- the task, on a Ray node ------------------------------------------------------------------


@lru_cache(maxsize=4)
def _factory(url: str) -> sessionmaker[Session]:
    """One engine per database in each Ray worker process: Ray reuses a process for many tasks. The
    dispatcher brought the schema up to date; a task on a node with another Unroll must not migrate it."""
    return session_factory(make_engine(url, migrate=False))


def run_on_ray_node(run: ClaimedRun, owner: str, db_url: str, heartbeat_seconds: float) -> str:
    """The Ray task: execute one claimed run on the node Ray chose; returns its outcome's value.

    `db_url` arrives through the object store (the dispatcher passes a reference, which Ray
    resolves before this call), so no task argument Ray records, logs or shows holds the password.
    """
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("unroll").setLevel(logging.INFO)  # the run's log tail needs its INFO lines
    node = ray.get_runtime_context().get_node_id()
    outcome = execute_claimed_run(
        _factory(db_url),
        run,
        owner,
        heartbeat_seconds=heartbeat_seconds,
        summary_extras={NODE_KEY: node},
        where=f" on Ray node {node}",
    )
    return outcome.value


# --- the dispatcher ---------------------------------------------------------------------------


def _check_reachable(address: str) -> None:
    """Knock at a HOST:PORT address first: Ray itself retries an address where nothing listens
    for minutes before it gives up, while this is one line at once."""
    if address in ("auto", "local"):
        return
    host, port = address.removeprefix("ray://").rsplit(":", 1)
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_SECONDS).close()
    except OSError as error:
        reason = error.strerror or str(error) or type(error).__name__
        raise RayUnavailable(
            f"cannot join the Ray cluster at {address!r}: nothing accepts connections there ({reason}; "
            "is the head running? start it with: ray start --head)"
        ) from error


def connect(address: str) -> None:
    """Join the cluster at `address`; `local` starts a Ray on this machine for the dispatcher's lifetime.

    RayUnavailable (one line) when no cluster answers there."""
    _check_reachable(address)
    try:
        ray.init(address=address, logging_level=logging.WARNING)  # "local" starts a new Ray, whatever runs here
    except (ConnectionError, RuntimeError, ValueError) as error:
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise RayUnavailable(f"cannot join the Ray cluster at {address!r}: {first_line}") from error


def cancel_grace_seconds(steps_taken: int, seconds_in_flight: float) -> float:
    """How long a task may take to stop after its cancel is seen before `ray.cancel` ends it.

    A task looks for a cancel between training steps, so a run of 3-second steps needs up to 3 s
    to stop on its own, and ending it by force loses its summary and log tail (its points stay).
    So: CANCEL_GRACE_SECONDS, or two of the run's steps so far (counting its graph building,
    which only makes the grace longer) when they take longer. A task that has taken no step yet
    (still building its graph, deaf to the cancel) gets the short grace.
    """
    if steps_taken < 1:
        return CANCEL_GRACE_SECONDS
    return max(CANCEL_GRACE_SECONDS, 2 * seconds_in_flight / steps_taken)


@dataclass
class InFlight:
    """A run this dispatcher claimed and submitted: `owner` is the claim's own worker id."""

    run_id: int
    owner: str
    submitted: float = field(default_factory=time.monotonic)  # when its task went to Ray (monotonic)
    cancel_seen: float | None = None  # monotonic time the dispatcher first saw a cancel request
    force_cancelled: bool = False


class RayExecutor(Worker):
    """The dispatcher: a registered worker (so the dashboard sees it alive, and it reaps lost
    runs from its heartbeat) whose runs train as Ray tasks instead of in its own process."""

    def __init__(
        self,
        url: str | None = None,
        address: str = "auto",
        resources: RunResources = RunResources(),
        slots: int | None = None,
        stale_after: float = STALE_AFTER_SECONDS,
        heartbeat_seconds: float = HEARTBEAT_SECONDS,
        poll_seconds: float = POLL_SECONDS,
    ):
        super().__init__(url, stale_after=stale_after, heartbeat_seconds=heartbeat_seconds, poll_seconds=poll_seconds)
        self.address = check_address(address)
        self.resources = resources
        self.slots = slots
        self.in_flight: dict[ray.ObjectRef, InFlight] = {}
        self._claim_numbers = itertools.count(1)
        self._last_run_beat = 0.0
        self._last_autoscaler_ask = 0.0
        self._runs_asked_for: int | None = None
        self._told_no_room = False
        self._url_ref: ray.ObjectRef | None = None
        self._task: Any = None

    # --- lifecycle ---------------------------------------------------------------------

    def serve(self, once: bool = False, max_runs: int | None = None) -> int:
        """Claim runs as Ray capacity frees up and submit them, until shut down, the queue is
        empty and every task has ended (once), or max_runs have been submitted and have ended."""
        if self._task is None:
            self.join_ray()
        self.register()
        submitted = 0
        try:
            while not self.shutdown.is_set():
                self._collect_finished()
                self._enforce_cancels()
                self._beat_for_runs_in_flight()
                self._ask_autoscaler()
                room = self._free_slots() if max_runs is None else min(self._free_slots(), max_runs - submitted)
                started, queue_empty = self._claim_and_submit(room)
                submitted += started
                if not self.in_flight and ((once and queue_empty) or submitted == max_runs):
                    break
                if not self.in_flight and not started:
                    self.shutdown.wait(self.poll_seconds)
        finally:
            self._hand_back_in_flight()
            self.deregister()
            ray.shutdown()
            log.info("Ray executor %s stopped after submitting %d runs", self.id, submitted)
        return submitted

    def join_ray(self) -> None:
        """Join the cluster and make the task ready; the database URL goes into the object store
        once, and every task gets only its reference (see task_arguments).

        Joining installs Ray's own SIGTERM handler in this process: install the executor's
        (install_signal_handlers) after this, or SIGTERM exits without handing runs back cleanly."""
        connect(self.address)
        self._warn_about_sqlite()
        self._url_ref = ray.put(task_db_url(self.url))
        self._task = ray.remote(run_on_ray_node)

    def _warn_about_sqlite(self) -> None:
        if make_url(self.url).get_backend_name() == "sqlite" and self.address != "local":
            log.warning(
                "the database %s is a SQLite file: only Ray nodes on this machine can open it; "
                "use PostgreSQL for a cluster of several machines (README, 'On a Ray cluster')",
                masked_url(self.url),
            )

    # --- placing runs ------------------------------------------------------------------

    def _free_slots(self) -> int:
        """Runs Ray can start now: what the alive nodes hold at once (capped by --slots), less
        the runs already in flight. The cluster's resources count as Unroll's: --slots leaves
        room for other work."""
        capacity = sum(self.resources.runs_that_fit(node["Resources"]) for node in ray.nodes() if node["Alive"])
        if capacity == 0 and not self._told_no_room:
            log.warning(
                "no alive Ray node has %s for a run: runs stay queued until one joins",
                self.resources.describe(),
            )
        self._told_no_room = capacity == 0
        if self.slots is not None:
            capacity = min(capacity, self.slots)
        return max(0, capacity - len(self.in_flight))

    def _claim_and_submit(self, room: int) -> tuple[int, bool]:
        """Claim and submit up to `room` runs: (how many, whether the queue was found empty)."""
        for started in range(room):
            owner = f"{self.id}/{next(self._claim_numbers)}"
            try:
                with self.factory.begin() as session:
                    run = queue.claim_next(session, owner)
            except SQLAlchemyError as error:  # the database is away for a moment: the next tick tries again
                log.warning("Ray executor %s: cannot reach the queue, retrying: %s", self.id, error)
                return started, False
            if run is None:
                return started, True
            self._submit(ClaimedRun.from_row(run), owner)
        return room, False

    def task_arguments(self, run: ClaimedRun, owner: str) -> tuple[Any, ...]:
        """What a run's task is called with: plain data and the URL's object-store reference."""
        return (run, owner, self._url_ref, self.heartbeat_seconds)

    def _submit(self, run: ClaimedRun, owner: str) -> None:
        options = {
            "num_cpus": self.resources.cpus,
            "num_gpus": self.resources.gpus,
            "max_retries": 0,  # a run is never executed twice: a lost task fails its run instead
            "name": f"unroll run {run.id}",
        }
        try:
            ref = self._task.options(**options).remote(*self.task_arguments(run, owner))
        except Exception:
            self._release(InFlight(run.id, owner))  # Ray refused it: the run goes back to the queue
            raise
        self.in_flight[ref] = InFlight(run.id, owner)
        log.info("run %s (%s): submitted to Ray, asking for %s", run.id, run.name, self.resources.describe())

    def _ask_autoscaler(self) -> None:
        """Tell Ray's autoscaler (KubeRay's, or a cloud launcher's) how many runs want to run at
        once, those in flight and those queued, so it grows the cluster for the queue although
        the queue itself stays in the store; once all is done it asks for none, and idle nodes
        can go. With no autoscaler, the request is a note nobody reads."""
        if time.monotonic() - self._last_autoscaler_ask < AUTOSCALER_SECONDS:
            return
        self._last_autoscaler_ask = time.monotonic()
        try:
            with self.factory() as session:
                queued = queue.count_queued(session)
        except SQLAlchemyError as error:
            log.warning("Ray executor %s: cannot count the queue: %s", self.id, error)
            return
        wanted = min(len(self.in_flight) + queued, self.slots or MOST_RUNS_ASKED_FOR, MOST_RUNS_ASKED_FOR)
        if wanted == self._runs_asked_for:
            return
        from ray.autoscaler.sdk import request_resources

        try:
            request_resources(bundles=[self.resources.bundle()] * wanted)
        except Exception as error:  # a hint only: a cluster that refuses it still runs what fits
            log.warning("Ray executor %s: the autoscaler request failed: %s", self.id, error)
        self._runs_asked_for = wanted

    # --- watching the tasks ------------------------------------------------------------

    def _collect_finished(self) -> None:
        """Wait a tick for tasks to end, and conclude each that did."""
        if not self.in_flight:
            return
        refs = list(self.in_flight)
        ready, _ = ray.wait(refs, num_returns=len(refs), timeout=TICK_SECONDS)
        for ref in ready:
            self._conclude(self.in_flight.pop(ref), ref)

    def _conclude(self, flight: InFlight, ref: ray.ObjectRef) -> None:
        """A task ended: if it returned, it recorded its run itself; if Ray says it was lost or
        cancelled, the dispatcher records that (guarded by the claim's owner, so a run the task
        did settle is left as it is)."""
        try:
            outcome = ray.get(ref)
        except ray_errors.RayError as error:
            if flight.cancel_seen is not None:  # cancelled, by the task or by ray.cancel, whatever else happened
                self._record(flight, queue.mark_cancelled)
            elif isinstance(error, ray_errors.RayTaskError):  # the task's own code raised around the run
                cause = getattr(error, "cause", None) or error
                self._record(flight, queue.fail, f"its Ray task failed: {type(cause).__name__}: {_first_line(cause)}")
            else:  # the node died, the worker process crashed or was killed: Ray lost the task
                lost = f"{queue.WORKER_LOST}: Ray lost its task ({type(error).__name__}: {_first_line(error)})"
                self._record(flight, queue.fail, lost)
        else:
            log.info("run %s: %s (Ray task ended)", flight.run_id, outcome)

    def _record(self, flight: InFlight, transition, error: str | None = None) -> None:
        arguments = (flight.run_id, flight.owner) + ((error,) if error is not None else ())
        try:
            with self.factory.begin() as session:
                transition(session, *arguments)
        except queue.TransitionError:  # its task settled it before it ended, or it was reaped or deleted
            return
        except SQLAlchemyError as failure:  # no longer heart-beaten by anyone: the reaper fails it later
            log.warning("run %s: recording what Ray reported failed: %s", flight.run_id, failure)
            return
        log.warning("run %s: %s", flight.run_id, error or "cancelled (its Ray task was cancelled)")

    def _enforce_cancels(self) -> None:
        """ray.cancel the task of a run whose cancel it has not honoured within its grace (`cancel_grace_seconds`)."""
        waiting = {flight.run_id: (ref, flight) for ref, flight in self.in_flight.items() if not flight.force_cancelled}
        if not waiting:
            return
        try:
            with self.factory() as session:
                asked = queue.cancels_requested(session, waiting.keys())
        except SQLAlchemyError as error:
            log.warning("Ray executor %s: cannot read cancel requests: %s", self.id, error)
            return
        now = time.monotonic()
        for run_id, steps in asked.items():
            ref, flight = waiting[run_id]
            if flight.cancel_seen is None:
                flight.cancel_seen = now
            elif now - flight.cancel_seen >= cancel_grace_seconds(steps, now - flight.submitted):
                log.warning("run %s: its task did not stop on the cancel request; cancelling it in Ray", run_id)
                ray.cancel(ref, force=True)
                flight.force_cancelled = True

    def _beat_for_runs_in_flight(self) -> None:
        """Heart-beat every run in flight: Ray holds it, even before its task starts heart-beating."""
        if not self.in_flight or time.monotonic() - self._last_run_beat < self.heartbeat_seconds:
            return
        self._last_run_beat = time.monotonic()
        try:
            with self.factory.begin() as session:
                for flight in self.in_flight.values():
                    # TransitionError: settled by its task already; Ray's answer will conclude it
                    with contextlib.suppress(queue.TransitionError):
                        queue.heartbeat(session, flight.run_id, flight.owner)
        except SQLAlchemyError as error:
            log.warning("Ray executor %s: heartbeat of its runs failed: %s", self.id, error)

    # --- stopping ----------------------------------------------------------------------

    def _hand_back_in_flight(self) -> None:
        """Cancel every task still in flight and hand its run back to the queue once Ray says it
        ended; a run whose task Ray cannot confirm ended is left running (the reaper fails it if
        the task is gone), so it can never train twice at once."""
        if not self.in_flight:
            return
        refs = list(self.in_flight)
        try:
            for ref in refs:
                ray.cancel(ref, force=True)
            ended, _ = ray.wait(refs, num_returns=len(refs), timeout=HAND_BACK_SECONDS)
        except Exception as error:  # Ray itself is gone: nothing can be confirmed
            log.warning("Ray executor %s: cannot cancel its tasks: %s", self.id, error)
            ended = []
        for ref in ended:
            self._release(self.in_flight.pop(ref))
        for flight in self.in_flight.values():
            log.warning("run %s: Ray did not confirm its task ended; left for the reaper", flight.run_id)
        self.in_flight.clear()

    def _release(self, flight: InFlight) -> None:
        try:
            with self.factory.begin() as session:
                queue.release(session, flight.run_id, flight.owner)
            log.info("run %s handed back to the queue", flight.run_id)
        except queue.TransitionError:  # its task settled it first
            pass
        except SQLAlchemyError as error:
            log.warning("run %s: handing it back failed (the reaper will fail it): %s", flight.run_id, error)


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:500]
