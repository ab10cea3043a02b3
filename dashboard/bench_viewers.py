"""A shared link holds a classroom: N real browsers open the same link at once (issue 15).

    python -m dashboard.bench --viewers                    # 1, 10 and 30 viewers on every link
    python -m dashboard.bench --viewers 1 10 --links compare2 --json /tmp/viewers.json

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
    """`streamlit run dashboard/app.py` on a free loopback port, serving the store at `url`, no worker."""

    def __init__(self, url: str, folder: Path, timeout: float = 60):
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
                str(APP),
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

    def client_cpu(self) -> float:
        """Everything else this benchmark runs: Chromium, Playwright's driver and this process."""
        return cpu_seconds(os.getpid(), exclude={self.process.pid})

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        self._log.close()


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


async def measure(
    browser: Browser, url: str, folder: Path, link: Link, viewers: int, idle_seconds: float, timeout: float
) -> Measurement:
    """One link, `viewers` pages at once, on a fresh server warmed by one page of the link."""
    server = Dashboard(url, folder)
    try:
        before = server.cpu()
        teacher = await new_pages(browser, 1)
        try:
            first = await load(teacher, server.base, link, timeout)
        finally:
            await _close(teacher)
        if isinstance(first[0], str):
            raise RuntimeError(f"{link.name}: the first page did not complete within {timeout:g} s: {first[0]}")
        await asyncio.sleep(SETTLE_SECONDS)  # let the closed session's last tick end
        cold = server.cpu() - before
        pages = await new_pages(browser, viewers)
        try:
            before, client_before = server.cpu(), server.client_cpu()
            times = await load(pages, server.base, link, timeout)
            loaded, client = server.cpu() - before, server.client_cpu() - client_before
            await asyncio.sleep(SETTLE_SECONDS)
            idle_from = server.cpu()
            await asyncio.sleep(idle_seconds)
            idle = server.cpu() - idle_from
        finally:
            await _close(pages)
    finally:
        server.stop()
    complete = [seconds for seconds in times if not isinstance(seconds, str)]
    return Measurement(
        link=link.name,
        viewers=viewers,
        cold_cpu=cold,
        load_cpu=loaded,
        cpu_per_viewer=loaded / viewers,
        client_cpu_per_viewer=client / viewers,
        completed=len(complete),
        last_complete_s=max(complete) if len(complete) == viewers else None,
        median_complete_s=statistics.median(complete) if complete else None,
        idle_cpu_per_viewer_s=idle / viewers / idle_seconds,
        problems=[seconds for seconds in times if isinstance(seconds, str)],
    )


async def _run_all(
    url: str, folder: Path, links: list[Link], viewers: list[int], idle_seconds: float, timeout: float, chromium: Path
) -> list[Measurement]:
    from playwright.async_api import async_playwright

    results = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        try:
            for link in links:
                for count in viewers:
                    print(f"{link.name}: {count} viewer(s) ...", file=sys.stderr, flush=True)
                    results.append(await measure(browser, url, folder, link, count, idle_seconds, timeout))
        finally:
            await browser.close()
    return results


def run_benchmark(
    viewers: Sequence[int] = DEFAULT_VIEWERS,
    links: Sequence[str] = LINKS,
    idle_seconds: float = 10.0,
    timeout: float = 120.0,
    group_runs: int = GROUP_RUNS,
    group_points: int = GROUP_POINTS,
    chromium: Path = CHROMIUM,
) -> list[Measurement]:
    """Seed a fresh store, measure every link with every N (N = 1 added as the marginal's
    baseline), and return the measurements, link by link in order of N."""
    unknown = set(links) - set(LINKS)
    if unknown:
        raise ValueError(f"unknown links {sorted(unknown)}; choose from {', '.join(LINKS)}")
    if any(count < 1 for count in viewers):
        raise ValueError("every N of --viewers must be at least 1")
    counts = sorted({1, *viewers})
    with tempfile.TemporaryDirectory(prefix="unroll-viewers-") as folder:
        url = f"sqlite:///{Path(folder) / 'unroll.db'}"
        chosen = [link for link in seed_store(url, group_runs, group_points) if link.name in links]
        results = asyncio.run(_run_all(url, Path(folder), chosen, counts, idle_seconds, timeout, chromium))
    baseline = {row.link: row.load_cpu for row in results if row.viewers == 1}
    for row in results:
        if row.viewers > 1:
            row.marginal_cpu = (row.load_cpu - baseline[row.link]) / (row.viewers - 1)
    return results


# --- the report ---------------------------------------------------------------------------


def _number(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def table(results: Sequence[Measurement]) -> str:
    """The measurements as a plain-text table."""
    header = (
        "link",
        "N",
        "cold open CPU s",
        "CPU s/viewer",
        "marginal CPU s/extra viewer",
        "s to last viewer complete",
        "complete",
        "idle CPU s/viewer/s",
        "browser CPU s/viewer",
    )
    rows = [
        (
            row.link,
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
                f"{row.link}, N={row.viewers}: {row.marginal_cpu:.3f} s CPU per additional viewer "
                f"(target <= {target:g} s): {verdict}"
            )
    for row in results:
        last = row.last_complete_s
        verdict = "met" if last is not None and last <= COMPLETE_WITHIN else "MISSED"
        shown = f"{last:.1f} s" if last is not None else f"only {row.completed} complete"
        lines.append(
            f"{row.link}, N={row.viewers}: all viewers complete in {shown} (target <= {COMPLETE_WITHIN:g} s): {verdict}"
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
            args.idle_seconds,
            args.timeout,
            args.group_runs,
            args.group_points,
        )
    except ValueError as error:
        parser.error(str(error))
    print(f"{os.cpu_count()} cores; each row on a fresh dashboard warmed by one page of its link")
    print(table(results))
    print("\n".join(verdicts(results)))
    for row in results:
        for problem, count in Counter(row.problems).items():
            print(f"{row.link}, N={row.viewers}: {count} page(s) did not complete: {problem}")
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
