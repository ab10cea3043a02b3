"""A shared link holds a classroom: N viewers open the same link at once (issue 15).

    python -m dashboard.bench --viewers                    # 1, 10 and 30 viewers on every link
    python -m dashboard.bench --viewers 1 10 --links compare2 --json /tmp/viewers.json
    python -m dashboard.bench --viewers --clients protocol --front nginx    # the hosted setup

Two kinds of viewer (--clients, both by default):
- browser: real Chromium pages on this machine. On a 2-core machine their own rendering
  (about 7 CPU seconds a Compare page, Streamlit's and Plotly's scripts) is the bottleneck
  long before the server is: thirty of them cannot all draw within 20 s whatever the server
  does, and the pages that wait keep ticking, which the server's figure then includes.
- protocol: what a remote viewer costs the server, without the rendering: each fetches the
  same files the teacher's Chromium page fetched and speaks Streamlit's WebSocket protocol
  (ProtocolViewer), and is complete when its script run has sent every chart.
--front nginx serves the viewers through nginx with deploy/nginx.conf, which caches
Streamlit's frontend files; nginx's CPU is counted as the server's too.

It seeds a fresh SQLite store in a temporary folder through the real queue: E1 (two finished
runs, static and dynamic, 88 steps each with a loss and an accuracy point per step, and their
summaries) and a group of 20 finished runs (500 points each). The links:
- compare2: /compare?runs=<E1's 2 ids> (the default view: a chart per metric);
- compare20: /compare?runs=<the 20 ids>;
- runs: / (the Runs table and the "Live workers" caption).

For every link and every N it starts a fresh dashboard (`streamlit run dashboard/app.py` from the
repository root, so its .streamlit/config.toml applies, on a free loopback port, UNROLL_WORKER=off
so nothing trains), opens the link once in a page of its
own and closes it (the teacher who built the view and shares its address: the server has
imported its modules and filled its caches), then opens N pages on the link at once in one
headless Chromium (Debian's /usr/bin/chromium, never a downloaded browser), each in its own
browser context, so each is a separate Streamlit session. A page is complete when every chart
is drawn: Compare, the expected number of `.js-plotly-plot` elements (what
comparison.build_figures makes of the seeded runs), each with its `.main-svg` and a trace
drawn; Runs, the table `[data-testid='stDataFrame']` and the "Live workers" caption.

Reported per link and N:
- cold open CPU s: the server's CPU for the teacher's first page on the fresh server (imports,
  the first database reads, cold caches), not counted in the figures below;
- CPU s per viewer: the server's CPU (user + system of the streamlit process and its
  descendants, exited children included, read from /proc/<pid>/stat) from just before the N
  pages navigate until the last one is complete, divided by N;
- marginal CPU s per extra viewer: (cpu(N) - cpu(1)) / (N - 1), where cpu(N) and cpu(1) are
  each measured on a fresh server warmed the same way (N = 1 is always measured, as the
  baseline). A fresh server per N keeps earlier viewers' fragment ticks and caches out of
  the figure, which an incremental measurement on one server would mix in;
- seconds until the last viewer is complete, from the first navigation (the browser shares
  the machine's cores with the server, so on a small machine this includes rendering N pages);
- idle CPU per viewer per second: the server's CPU while the N pages sit open (every page's
  live fragment ticks every 2 s) over --idle-seconds, after a 2 s settle, / N / seconds;
- browser CPU s per viewer: what everything else this benchmark runs (Chromium, Playwright's
  driver, this process) used in the same window as the load figure, / N. Where it dwarfs the
  server's, the machine is busy rendering the pages: the seconds to complete and the server's
  CPU in that window (ticks of the pages already open) both grow with it, so on a 2-core
  machine hosting 30 browsers the load figures overstate what 30 remote viewers would cost.
Targets (issue 15, on the project's 2-core machine): at most 0.25 s of CPU per additional
viewer on compare2 and 1 s on compare20, and every viewer complete within 20 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from sqlalchemy.orm import Session, sessionmaker

from dashboard import comparison, queries, sharing
from db import queue
from db.engine import make_engine, session_factory
from db.presets import E1_LSTM

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page

APP = Path(__file__).resolve().parent / "app.py"
ROOT = APP.parents[1]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
LINKS = ("compare2", "compare20", "runs")
CLIENTS = ("browser", "protocol")
FRONTS = ("none", "nginx")
DEFAULT_VIEWERS = (1, 10, 30)
E1_STEPS = 88
GROUP_RUNS = 20
GROUP_POINTS = 500  # per run: half loss, half accuracy
# Issue 15's targets: CPU seconds per additional viewer by link, and every viewer complete within this.
MARGINAL_TARGETS = {"compare2": 0.25, "compare20": 1.0}
COMPLETE_WITHIN = 20.0
SETTLE_SECONDS = 2.0  # after the last page is complete, before the idle measurement
POLL_MS = 250  # how often a page checks whether it is complete (not every animation frame: the browser shares the CPU)

COMPARE_READY = """(expected) => {
    const plots = [...document.querySelectorAll('.js-plotly-plot')];
    return plots.length >= expected
        && plots.every((plot) => plot.querySelector('.main-svg') && plot.querySelector('.scatterlayer .trace'));
}"""
# What a page that did not complete shows, for the report.
DESCRIBE = """() => {
    const app = document.querySelector("[data-testid='stApp']");
    const plots = [...document.querySelectorAll('.js-plotly-plot')];
    const drawn = plots.filter((plot) => plot.querySelector('.main-svg') && plot.querySelector('.scatterlayer .trace'));
    const alerts = [...document.querySelectorAll("[data-testid='stAlert'], [data-testid='stException']")];
    return `script ${app ? app.dataset.testScriptState : 'not loaded'}, ${plots.length} chart(s), `
        + `${drawn.length} drawn, ${document.querySelectorAll("[data-testid='stDataFrame']").length} table(s)`
        + alerts.map((alert) => `; says: ${alert.textContent.slice(0, 200)}`).join('');
}"""
RUNS_READY = """() => !!document.querySelector("[data-testid='stDataFrame']")
    && [...document.querySelectorAll("[data-testid='stCaptionContainer']")].some(
        (caption) => caption.textContent.includes('Live workers'))"""


@dataclass(frozen=True)
class Link:
    """A link to open, and what a complete page shows: `charts` Plotly charts (0: the Runs page)."""

    name: str
    path: str
    charts: int


@dataclass
class Measurement:
    """One link opened by `viewers` pages at once on a fresh server; CPU in seconds."""

    link: str
    client: str  # "browser" (real Chromium pages) or "protocol" (Streamlit's own protocol, no rendering)
    viewers: int
    cold_cpu: float
    load_cpu: float
    cpu_per_viewer: float
    client_cpu_per_viewer: float  # Chromium, Playwright and the benchmark, sharing the machine's cores
    completed: int
    last_complete_s: float | None  # None when a page did not complete within the timeout
    median_complete_s: float | None
    idle_cpu_per_viewer_s: float
    marginal_cpu: float | None = None  # filled in by run_benchmark against N = 1
    problems: list[str] = field(default_factory=list)  # what each page that did not complete showed


# --- the store --------------------------------------------------------------------------


def _finished_run(
    factory: sessionmaker[Session], config: dict[str, Any], steps: int, ms_per_step: float, group: str, seed: int
) -> int:
    """A finished MNIST run with a loss and an accuracy point per step and a summary, through the queue."""
    with factory.begin() as session:
        run_id = queue.enqueue(session, config, group=group)
        queue.claim_next(session, "bench")
        points = []
        for step in range(1, steps + 1):
            seconds = step * ms_per_step / 1000
            loss = 2.3 * math.exp(-step / (steps / 4)) + 0.05 + 0.02 * math.sin(step + seed)
            points += [
                queue.Point("loss", step, seconds, loss),
                queue.Point("accuracy", step, seconds, min(1.0, 1 - loss / 2.4)),
            ]
        queue.append_metrics(session, run_id, "bench", points)
        queue.finish(
            session,
            run_id,
            "bench",
            {
                "steps": steps,
                "median_step_ms": ms_per_step,
                "trace_seconds": 1.5,
                "parameters": 8554,
                "peak_memory_mb": 300.0,
                "data_source": "offline",
                "test_accuracy": 0.91,
            },
        )
    return run_id


def seed_store(url: str, group_runs: int = GROUP_RUNS, group_points: int = GROUP_POINTS) -> list[Link]:
    """E1's two runs and a group of `group_runs`, in the store at `url`; returns the links to open."""
    engine = make_engine(url)
    factory = session_factory(engine)
    try:
        e1 = [
            _finished_run(
                factory,
                {**E1_LSTM, "name": f"E1 {mode}", "mode": mode},
                E1_STEPS,
                20.0 if mode == "static" else 35.0,
                "e1-static-vs-dynamic",
                index,
            )
            for index, mode in enumerate(("static", "dynamic"))
        ]
        group = [
            _finished_run(
                factory,
                {"name": f"sweep {index}", "max_steps": group_points // 2, "seed": index},
                group_points // 2,
                5.0 + index % 3,
                "sweep",
                index,
            )
            for index in range(group_runs)
        ]
        return [
            Link("compare2", "compare?runs=" + ",".join(map(str, e1)), expected_charts(factory, e1)),
            Link("compare20", "compare?runs=" + ",".join(map(str, group)), expected_charts(factory, group)),
            Link("runs", "", 0),
        ]
    finally:
        engine.dispose()


def expected_charts(factory: sessionmaker[Session], run_ids: list[int]) -> int:
    """How many charts the Compare page draws for these runs in the default view of a link."""
    with factory() as session:
        runs = queries.run_infos(session, run_ids)
        points = queries.concat_points([queries.points_frame(session, run.id, run.started_at) for run in runs])
    return len(comparison.build_figures(runs, points, dict(sharing.DEFAULTS)))


# --- the server and its CPU ---------------------------------------------------------------


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (field 3, the state, is [0]); None once gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()


def _process_tree(root: int, exclude: Collection[int] = ()) -> list[int]:
    """`root` and its live descendants, leaving out the subtrees of the processes in `exclude`."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields is not None:
                children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        if pid not in exclude:
            found.append(pid)
            todo += children.get(pid, [])
    return found


def cpu_seconds(root: int, exclude: Collection[int] = ()) -> float:
    """User + system CPU seconds of a process and its live descendants (but the subtrees of
    `exclude`), each with its exited and waited-for children's: proc(5) fields 14 to 17."""
    ticks = 0
    for pid in _process_tree(root, exclude):
        fields = _stat_fields(pid)
        if fields is not None:
            ticks += sum(int(value) for value in fields[11:15])  # utime, stime, cutime, cstime
    return ticks / os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Dashboard:
    """`streamlit run dashboard/app.py` (or another `script`) on a free loopback port, serving the
    store at `url`, no worker."""

    def __init__(self, url: str, folder: Path, timeout: float = 60, script: Path = APP):
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = folder / f"streamlit-{self.port}.log"
        self._log: IO[bytes] = open(self.log_path, "wb")  # noqa: SIM115 - open while the server runs
        env = {**os.environ, "UNROLL_DB_URL": url, "UNROLL_WORKER": "off"}
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "streamlit",
                "run",
                str(script),
                "--server.headless",
                "true",
                "--server.port",
                str(self.port),
                "--server.address",
                "127.0.0.1",
                "--browser.gatherUsageStats",
                "false",
                "--server.fileWatcherType",
                "none",
            ],
            cwd=ROOT,  # the repository's .streamlit/config.toml applies, as when it is served
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        try:
            self._wait_healthy(timeout)
        except BaseException:
            self.stop()
            raise

    def _wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"streamlit exited with {self.process.returncode}; see {self.log_path}")
            try:
                with urllib.request.urlopen(f"{self.base}/_stcore/health", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.3)
        raise RuntimeError(f"streamlit did not become healthy within {timeout:g} s; see {self.log_path}")

    def cpu(self) -> float:
        return cpu_seconds(self.process.pid)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        self._log.close()


NGINX = Path("/usr/sbin/nginx")
NGINX_CONF = ROOT / "deploy" / "nginx.conf"


class Front:
    """nginx in front of a dashboard, with the repository's deploy/nginx.conf: Streamlit's
    frontend files come from nginx's cache after the first viewer. Its CPU is server CPU too."""

    def __init__(self, dashboard: Dashboard, folder: Path, timeout: float = 20):
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        cache = folder / f"nginx-{self.port}"
        cache.mkdir(mode=0o777)
        cache.chmod(0o777)  # started as root, nginx's workers drop to an unprivileged user that must write here
        folder.chmod(folder.stat().st_mode | 0o111)  # and reach it
        conf = cache / "nginx.conf"
        conf.write_text(
            NGINX_CONF.read_text()
            .replace("@LISTEN@", f"127.0.0.1:{self.port}")
            .replace("@DASHBOARD@", f"127.0.0.1:{dashboard.port}")
            .replace("@CACHE@", str(cache))
        )
        self.process = subprocess.Popen(
            [str(NGINX), "-c", str(conf), "-e", str(cache / "error.log"), "-g", "daemon off;"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.base}/_stcore/health", timeout=2):
                    return
            except OSError:
                if self.process.poll() is not None:
                    raise RuntimeError(
                        f"nginx exited with {self.process.returncode}; see {cache / 'error.log'}"
                    ) from None
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"nginx did not answer within {timeout:g} s; see {cache / 'error.log'}")

    def cpu(self) -> float:
        return cpu_seconds(self.process.pid)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)


class Served:
    """What the viewers reach: the dashboard itself, or nginx in front of it; its CPU is both's."""

    def __init__(self, url: str, folder: Path, front: str):
        self.dashboard = Dashboard(url, folder)
        try:
            self.front = Front(self.dashboard, folder) if front == "nginx" else None
        except BaseException:
            self.dashboard.stop()
            raise
        self.base = self.front.base if self.front else self.dashboard.base

    def cpu(self) -> float:
        return self.dashboard.cpu() + (self.front.cpu() if self.front else 0.0)

    def client_cpu(self) -> float:
        """Everything else this benchmark runs: Chromium, Playwright's driver and this process."""
        exclude = {self.dashboard.process.pid} | ({self.front.process.pid} if self.front else set())
        return cpu_seconds(os.getpid(), exclude=exclude)

    def stop(self) -> None:
        if self.front:
            self.front.stop()
        self.dashboard.stop()


# --- the viewers --------------------------------------------------------------------------


async def _open(page: Page, url: str, link: Link, deadline: float) -> float | str:
    """Navigate and wait until the page is complete; returns when (monotonic), or on a timeout
    what the page shows."""
    from playwright.async_api import Error as PlaywrightError

    try:
        await page.goto(url, wait_until="commit", timeout=max(1.0, deadline - time.monotonic()) * 1000)
        if link.charts:
            await page.wait_for_function(
                COMPARE_READY,
                arg=link.charts,
                polling=POLL_MS,
                timeout=max(1.0, deadline - time.monotonic()) * 1000,
            )
        else:
            await page.wait_for_function(
                RUNS_READY, polling=POLL_MS, timeout=max(1.0, deadline - time.monotonic()) * 1000
            )
    except PlaywrightError as error:
        if "Timeout" not in str(error):
            return str(error).splitlines()[0]
        try:
            shown: str = await page.evaluate(DESCRIBE)
        except PlaywrightError:
            shown = "nothing readable"
        return f"not complete in time: {shown}"
    return time.monotonic()


class ProtocolViewer:
    """A viewer without a browser: fetches what the teacher's Chromium page fetched (HTML,
    scripts, fonts, the same requests in the same order, with the browser's Accept-Encoding),
    then speaks Streamlit's own WebSocket protocol: asks for the page once, reads the
    elements the server sends until the script run has finished with every chart (or, on
    Runs, the table and the "Live workers" caption), and from then on answers the page's
    fragment ticks (auto_rerun) as a browser does until closed. The server does exactly the
    work it does for a remote viewer; the machine does none of a browser's rendering."""

    def __init__(self, base: str, link: Link, assets: Sequence[str]):
        self.base, self.link, self.assets = base, link, assets
        self._closing = asyncio.Event()

    async def _fetch_assets(self) -> None:
        for url in self.assets:
            await asyncio.to_thread(_get, url)

    def _rerun(self, fragment_id: str = "") -> bytes:
        from streamlit.proto.BackMsg_pb2 import BackMsg

        message = BackMsg()
        path, _, query = self.link.path.partition("?")
        message.rerun_script.query_string = query
        message.rerun_script.page_name = path
        if fragment_id:
            message.rerun_script.fragment_id = fragment_id
            message.rerun_script.is_auto_rerun = True
        return bytes(message.SerializeToString())

    async def open(self, deadline: float) -> float | str:
        """Returns when the page was complete (monotonic), or what it lacked at the deadline;
        keeps the session open and ticking until close()."""
        import websockets

        ready = asyncio.get_running_loop().create_future()
        self._task = asyncio.create_task(self._session(ready, websockets))
        try:
            return await asyncio.wait_for(asyncio.shield(ready), max(0.1, deadline - time.monotonic()))
        except asyncio.TimeoutError:
            return f"not complete in time: {self._seen}"

    async def _session(self, ready: asyncio.Future, websockets: Any) -> None:
        self._seen = "fetching the page's files"
        try:
            await self._fetch_assets()
            url = self.base.replace("http://", "ws://", 1) + "/_stcore/stream"
            async with websockets.connect(url, subprotocols=["streamlit"], max_size=None) as socket:
                await socket.send(self._rerun())
                ticks = await self._read_until_complete(socket, ready)
                await self._tick(socket, ticks)
        except Exception as error:  # the report says what went wrong; the benchmark goes on
            if not ready.done():
                ready.set_result(f"{type(error).__name__}: {error}")

    async def _read_until_complete(self, socket: Any, ready: asyncio.Future) -> tuple[str, float] | None:
        """Read the first script run's messages; returns the fragment tick it asked for, if any."""
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        charts = tables = 0
        live_caption, finished = False, False
        tick: tuple[str, float] | None = None
        while not (finished and ready.done()):
            message = ForwardMsg.FromString(await socket.recv())
            kind = message.WhichOneof("type")
            if kind == "auto_rerun":
                tick = (message.auto_rerun.fragment_id, float(message.auto_rerun.interval))
            elif kind == "script_finished":
                finished = True
            elif kind == "delta" and message.delta.WhichOneof("type") == "new_element":
                element = message.delta.new_element
                charts += element.WhichOneof("type") == "plotly_chart"
                tables += element.WhichOneof("type") in ("dataframe", "arrow_data_frame")
                live_caption |= element.WhichOneof("type") == "markdown" and "Live workers" in element.markdown.body
            self._seen = f"{charts} chart(s), {tables} table(s), script {'finished' if finished else 'running'}"
            complete = charts >= self.link.charts if self.link.charts else tables > 0 and live_caption
            if complete and finished and not ready.done():
                ready.set_result(time.monotonic())
            elif finished and not ready.done():
                ready.set_result(f"not complete: {self._seen}")
        return tick

    async def _tick(self, socket: Any, tick: tuple[str, float] | None) -> None:
        """Answer the page's fragment ticks as a browser does, reading what each sends back."""
        while not self._closing.is_set():
            if tick is None:
                await self._closing.wait()
                return
            try:
                await asyncio.wait_for(self._closing.wait(), tick[1])
                return
            except asyncio.TimeoutError:
                await socket.send(self._rerun(tick[0]))
            await self._drain(socket)

    async def _drain(self, socket: Any) -> None:
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        while True:
            message = ForwardMsg.FromString(await socket.recv())
            if message.WhichOneof("type") == "script_finished":
                return

    async def close(self) -> None:
        self._closing.set()
        if hasattr(self, "_task"):
            await asyncio.gather(self._task, return_exceptions=True)


def _get(url: str) -> None:
    """One of the page's requests, answered as the browser's was (a 404 included: the browser
    asked for it too, and the server did the work of answering)."""
    request = urllib.request.Request(url, headers={"Accept-Encoding": "gzip, deflate, br, zstd"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            response.read()
    except urllib.error.HTTPError as error:
        error.read()


async def new_pages(browser: Browser, count: int) -> list[Page]:
    """`count` blank pages, each in a browser context of its own (its own cookies and cache)."""
    contexts = [await browser.new_context(viewport={"width": 1400, "height": 1000}) for _ in range(count)]
    return [await context.new_page() for context in contexts]


async def load(pages: Sequence[Page], base: str, link: Link, timeout: float) -> list[float | str]:
    """Every page navigates to the link at once; returns each page's seconds until it is
    complete, or, when it was not within `timeout`, what it showed then."""
    began = time.monotonic()
    done = await asyncio.gather(*(_open(page, f"{base}/{link.path}", link, began + timeout) for page in pages))
    return [at if isinstance(at, str) else at - began for at in done]


async def _close(pages: Sequence[Page]) -> None:
    await asyncio.gather(*(page.context.close() for page in pages), return_exceptions=True)


async def _teacher(browser: Browser, base: str, link: Link, timeout: float) -> list[str]:
    """The teacher's page: opens the link once on the fresh server (imports, first reads, cold
    caches) and returns the same-origin HTTP requests it made, for the protocol viewers."""
    pages = await new_pages(browser, 1)
    requests: list[str] = []
    pages[0].on(
        "request",
        lambda request: (
            requests.append(request.url)
            if request.url.startswith(base) and request.resource_type != "websocket"
            else None
        ),
    )
    try:
        first = await load(pages, base, link, timeout)
    finally:
        await _close(pages)
    if isinstance(first[0], str):
        raise RuntimeError(f"{link.name}: the first page did not complete within {timeout:g} s: {first[0]}")
    return list(dict.fromkeys(requests))  # each once, in order (a browser's cache would not ask twice)


async def _open_viewers(
    browser: Browser, client: str, base: str, link: Link, assets: list[str], viewers: int, timeout: float
) -> tuple[list[float | str], Any]:
    """`viewers` open the link at once; returns their times and what closes them."""
    if client == "browser":
        pages = await new_pages(browser, viewers)
        return await load(pages, base, link, timeout), lambda: _close(pages)
    sessions = [ProtocolViewer(base, link, assets) for _ in range(viewers)]
    began = time.monotonic()
    done = await asyncio.gather(*(viewer.open(began + timeout) for viewer in sessions))

    async def close() -> None:
        await asyncio.gather(*(viewer.close() for viewer in sessions))

    return [at if isinstance(at, str) else at - began for at in done], close


async def measure(
    browser: Browser,
    url: str,
    folder: Path,
    link: Link,
    viewers: int,
    idle_seconds: float,
    timeout: float,
    client: str = "browser",
    front: str = "none",
) -> Measurement:
    """One link, `viewers` at once, on a fresh server warmed by the teacher's page of the link."""
    server = Served(url, folder, front)
    try:
        before = server.cpu()
        assets = await _teacher(browser, server.base, link, timeout)
        await asyncio.sleep(SETTLE_SECONDS)  # let the closed session's last tick end
        cold = server.cpu() - before
        before, client_before = server.cpu(), server.client_cpu()
        times, close = await _open_viewers(browser, client, server.base, link, assets, viewers, timeout)
        try:
            loaded, client_cpu = server.cpu() - before, server.client_cpu() - client_before
            await asyncio.sleep(SETTLE_SECONDS)
            idle_from = server.cpu()
            await asyncio.sleep(idle_seconds)
            idle = server.cpu() - idle_from
        finally:
            await close()
    finally:
        server.stop()
    complete = [seconds for seconds in times if not isinstance(seconds, str)]
    return Measurement(
        link=link.name,
        client=client if front == "none" else f"{client} via {front}",
        viewers=viewers,
        cold_cpu=cold,
        load_cpu=loaded,
        cpu_per_viewer=loaded / viewers,
        client_cpu_per_viewer=client_cpu / viewers,
        completed=len(complete),
        last_complete_s=max(complete) if len(complete) == viewers else None,
        median_complete_s=statistics.median(complete) if complete else None,
        idle_cpu_per_viewer_s=idle / viewers / idle_seconds,
        problems=[seconds for seconds in times if isinstance(seconds, str)],
    )


async def _run_all(
    url: str,
    folder: Path,
    links: list[Link],
    clients: Sequence[str],
    viewers: list[int],
    idle_seconds: float,
    timeout: float,
    chromium: Path,
    front: str,
) -> list[Measurement]:
    from playwright.async_api import async_playwright

    results = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        try:
            for link in links:
                for client in clients:
                    for count in viewers:
                        print(f"{link.name}, {client}: {count} viewer(s) ...", file=sys.stderr, flush=True)
                        results.append(
                            await measure(browser, url, folder, link, count, idle_seconds, timeout, client, front)
                        )
        finally:
            await browser.close()
    return results


def run_benchmark(
    viewers: Sequence[int] = DEFAULT_VIEWERS,
    links: Sequence[str] = LINKS,
    clients: Sequence[str] = CLIENTS,
    idle_seconds: float = 10.0,
    timeout: float = 120.0,
    group_runs: int = GROUP_RUNS,
    group_points: int = GROUP_POINTS,
    chromium: Path = CHROMIUM,
    front: str = "none",
) -> list[Measurement]:
    """Seed a fresh store, measure every link with every N (N = 1 added as the marginal's
    baseline), and return the measurements, link by link in order of N."""
    unknown = set(links) - set(LINKS)
    if unknown:
        raise ValueError(f"unknown links {sorted(unknown)}; choose from {', '.join(LINKS)}")
    if front not in FRONTS:
        raise ValueError(f"--front takes {' or '.join(FRONTS)}; got {front!r}")
    if front == "nginx" and not NGINX.exists():
        raise ValueError(f"--front nginx needs {NGINX} (apt-get install -y nginx-light)")
    if not clients or set(clients) - set(CLIENTS):
        raise ValueError(f"--clients takes {' and/or '.join(CLIENTS)}, comma-separated; got {','.join(clients)!r}")
    if any(count < 1 for count in viewers):
        raise ValueError("every N of --viewers must be at least 1")
    counts = sorted({1, *viewers})
    with tempfile.TemporaryDirectory(prefix="unroll-viewers-") as folder:
        url = f"sqlite:///{Path(folder) / 'unroll.db'}"
        chosen = [link for link in seed_store(url, group_runs, group_points) if link.name in links]
        results = asyncio.run(
            _run_all(url, Path(folder), chosen, clients, counts, idle_seconds, timeout, chromium, front)
        )
    baseline = {(row.link, row.client): row.load_cpu for row in results if row.viewers == 1}
    for row in results:
        if row.viewers > 1:
            row.marginal_cpu = (row.load_cpu - baseline[row.link, row.client]) / (row.viewers - 1)
    return results


# --- the report ---------------------------------------------------------------------------


def _number(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def table(results: Sequence[Measurement]) -> str:
    """The measurements as a plain-text table."""
    header = (
        "link",
        "viewers",
        "N",
        "cold open CPU s",
        "CPU s/viewer",
        "marginal CPU s/extra viewer",
        "s to last viewer complete",
        "complete",
        "idle CPU s/viewer/s",
        "client CPU s/viewer",
    )
    rows = [
        (
            row.link,
            row.client,
            str(row.viewers),
            _number(row.cold_cpu, 2),
            _number(row.cpu_per_viewer),
            _number(row.marginal_cpu),
            _number(row.last_complete_s, 1),
            f"{row.completed}/{row.viewers}",
            _number(row.idle_cpu_per_viewer_s, 4),
            _number(row.client_cpu_per_viewer, 2),
        )
        for row in results
    ]
    widths = [max(len(line[column]) for line in [header, *rows]) for column in range(len(header))]
    return "\n".join("  ".join(cell.rjust(width) for cell, width in zip(line, widths)) for line in [header, *rows])


def verdicts(results: Sequence[Measurement]) -> list[str]:
    """One line per target and measurement it applies to, ending in met or MISSED."""
    lines = []
    for row in results:
        target = MARGINAL_TARGETS.get(row.link)
        if target is not None and row.marginal_cpu is not None:
            verdict = "met" if row.marginal_cpu <= target else "MISSED"
            lines.append(
                f"{row.link}, {row.client}, N={row.viewers}: {row.marginal_cpu:.3f} s CPU per additional viewer "
                f"(target <= {target:g} s): {verdict}"
            )
    for row in results:
        last = row.last_complete_s
        verdict = "met" if last is not None and last <= COMPLETE_WITHIN else "MISSED"
        shown = f"{last:.1f} s" if last is not None else f"only {row.completed} complete"
        lines.append(
            f"{row.link}, {row.client}, N={row.viewers}: all viewers complete in {shown} "
            f"(target <= {COMPLETE_WITHIN:g} s): {verdict}"
        )
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dashboard.bench", description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument(
        "--viewers",
        type=int,
        nargs="*",
        metavar="N",
        default=list(DEFAULT_VIEWERS),
        help="how many browsers open each link at once (given without values: 1 10 30)",
    )
    parser.add_argument("--links", default=",".join(LINKS), help=f"comma-separated, of {', '.join(LINKS)}")
    parser.add_argument(
        "--clients",
        default=",".join(CLIENTS),
        help="browser (real Chromium pages on this machine), protocol (Streamlit's protocol, no rendering), or both",
    )
    parser.add_argument(
        "--front",
        choices=FRONTS,
        default="none",
        help="nginx: viewers reach the dashboard through nginx with deploy/nginx.conf (its CPU counted too)",
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the measurements as JSON")
    parser.add_argument("--idle-seconds", type=float, default=10.0, help="how long the open pages are measured idle")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds a page may take to complete")
    parser.add_argument("--group-runs", type=int, default=GROUP_RUNS)
    parser.add_argument("--group-points", type=int, default=GROUP_POINTS, help="points per run of the group")
    args = parser.parse_args(argv)
    links = [name.strip() for name in args.links.split(",") if name.strip()]
    if not CHROMIUM.exists():
        print(f"{CHROMIUM} is missing (apt-get install -y chromium)", file=sys.stderr)
        return 2
    try:
        results = run_benchmark(
            args.viewers or DEFAULT_VIEWERS,
            links,
            [name.strip() for name in args.clients.split(",") if name.strip()],
            args.idle_seconds,
            args.timeout,
            args.group_runs,
            args.group_points,
            front=args.front,
        )
    except ValueError as error:
        parser.error(str(error))
    print(f"{os.cpu_count()} cores; each row on a fresh dashboard warmed by one page of its link")
    print(table(results))
    print("\n".join(verdicts(results)))
    for row in results:
        for problem, count in Counter(row.problems).items():
            print(f"{row.link}, {row.client}, N={row.viewers}: {count} viewer(s) did not complete: {problem}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "cores": os.cpu_count(),
                    "measurements": [asdict(row) for row in results],
                    "targets": {"marginal_cpu": MARGINAL_TARGETS, "complete_within_s": COMPLETE_WITHIN},
                    "verdicts": verdicts(results),
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
