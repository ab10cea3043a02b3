"""Where people wait (issue 14): seconds from navigation to every chart drawn, in real Chromium.

    python -m dashboard.bench --browser      # Compare: 2 and 20 runs x 2,000 and 20,000 points; Runs: 1,000 and 10,000
    python -m dashboard.bench --browser --repeats 1 --points 2000 --table-runs 1000    # a quick look
    python -m dashboard.bench --browser --json /tmp/browser.json

It seeds fresh SQLite stores in a temporary folder through the real queue (dashboard.bench's
seed helpers: 20 finished MNIST runs per point count, each with a loss and an accuracy point
per step; and N finished series runs for the Runs page), then, per link and repeat, starts a
fresh dashboard (dashboard.bench_viewers.Dashboard: `streamlit run dashboard/app.py` on a free
port, UNROLL_WORKER=off) and opens the link three times in headless Chromium (Debian's
/usr/bin/chromium, never a downloaded browser), one page at a time:
- cold: the first page on the fresh server (imports, first reads, empty caches) in a new
  browser context (nothing cached in the browser either);
- warm: a second page in another new browser context: a new viewer of a warm server, who
  still downloads and compiles Streamlit's and Plotly's scripts;
- cached: a third page in the cold page's context: someone who opens the link again, with
  the scripts in the browser's cache.
Each is timed from just before navigation until the page is complete: Compare, the charts
comparison.build_figures makes of the runs in the default view, each drawn (its SVG, and a
trace drawn in SVG or, for WebGL traces, on its canvas); Runs, the table and the "Live
workers" caption (bench_viewers.RUNS_READY). On Runs the page picker then goes to the last
page and that is timed too (every run reachable). The report gives medians over --repeats
(the machine's cores are shared: one timing is noise) next to the server-side figures of
dashboard.bench for the same store, and what one warm Compare page costs the browser: bytes
over the WebSocket, script runs asked for, Chromium's main-thread task, script and layout
seconds (CDP Performance metrics), and the figure JSON each chart takes.
The peer, measured in the same run and the same way: Streamlit alone (FLOOR_SCRIPT), a page
with a title, a two-row table and a caption, and the same with one two-point Plotly chart. Every
Unroll page holds at least a table (and Compare a chart), so none can load faster than these on
this machine: each link's warm time is also given as a ratio to the matching one, and each
target's line says how much of it was Unroll's own part.
Targets (issue 14): Compare with 20 runs x 20,000 points under 1.5 s warm and 3 s cold; Runs
with 10,000 runs under 1 s warm.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session, sessionmaker

from dashboard import bench, bench_viewers, comparison, queries, sharing
from db.engine import make_engine, session_factory

if TYPE_CHECKING:
    from playwright.async_api import Browser, BrowserContext, Page

COMPARE_RUNS = (2, 20)
POINTS = (2_000, 20_000)
TABLE_RUNS = (1_000, 10_000)
SEEDED_RUNS = 20  # per point count; the 2-run link takes the first two
POLL_MS = 50  # how often a page checks whether it is complete: finer than bench_viewers', one page at a time
# Issue 14's targets, seconds, for the largest links.
TARGETS = {("compare 20 x 20,000", "warm"): 1.5, ("compare 20 x 20,000", "cold"): 3.0, ("runs 10,000", "warm"): 1.0}
# bench_viewers.COMPARE_READY sees SVG traces only; a WebGL trace (Scattergl) draws on the plot's canvas
# instead. A plot is drawn when Plotly has laid it out (its SVG) and has a trace drawn either way: an SVG
# trace element, or a WebGL scene that has drawn (Plotly clears its `dirty` flag after the draw).
CHARTS_DRAWN = """(expected) => {
    const drawn = (plot) => {
        if (!plot.querySelector('.main-svg') || !plot._fullLayout) return false;
        if (plot.querySelector('.scatterlayer .trace')) return true;
        const scenes = Object.values(plot._fullLayout._plots || {}).map((sub) => sub._scene).filter(Boolean);
        return scenes.length > 0 && scenes.every((scene) => scene.dirty === false);
    };
    const plots = [...document.querySelectorAll('.js-plotly-plot')];
    return plots.length >= expected && plots.every(drawn);
}"""
PAGE_CAPTION = """(text) => [...document.querySelectorAll("[data-testid='stCaptionContainer']")].some(
    (caption) => caption.textContent.includes(text))"""
KINDS = ("cold", "warm", "cached")
# The peer every page is measured against in the same run: Streamlit itself. Its frontend boots,
# opens the WebSocket and draws a page whatever the page holds; these two pages hold next to
# nothing, so their seconds are the floor no Unroll page can go under on this machine and in this
# browser (the table page's boot compares with Runs; the chart page's adds Plotly's script, which
# Streamlit loads on a page's first chart, and compares with Compare).
FLOOR_SCRIPT = """import streamlit as st

st.title("Streamlit alone")
if st.query_params.get("chart"):
    import plotly.graph_objects as go

    st.plotly_chart(go.Figure(go.Scatter(x=[0, 1], y=[0, 1])))
st.dataframe({"run": [1, 2]})
st.caption("floor drawn")
"""
FLOOR_READY = """() => !!document.querySelector("[data-testid='stDataFrame']")
    && [...document.querySelectorAll("[data-testid='stCaptionContainer']")].some(
        (caption) => caption.textContent.includes('floor drawn'))"""
FLOOR_TABLE = "streamlit alone: a table"
FLOOR_CHART = "streamlit alone: a table and a chart"


@dataclass(frozen=True)
class Link:
    """A page to open: `charts` charts to wait for (Compare) or, with `table_runs`, the Runs table."""

    name: str
    url: str  # the store
    path: str
    charts: int = 0
    table_runs: int = 0
    run_ids: tuple[int, ...] = ()
    script: Path = bench_viewers.APP  # a floor link's is FLOOR_SCRIPT

    @property
    def ready(self) -> str:
        """The script that tells when the page is complete (its argument: `charts`)."""
        if self.charts:
            return CHARTS_DRAWN
        return bench_viewers.RUNS_READY if self.table_runs else FLOOR_READY


@dataclass
class Load:
    """One page's load: seconds to complete, and what it cost the browser and the wire."""

    seconds: float
    script_finished_s: float | None = None  # when the server said its first script run was over
    browser_cpu: float = 0.0  # Chromium's CPU seconds (all its processes), Playwright's and this process's
    renderer_cpu: float = 0.0  # of which Chromium's renderers: the page's scripts, layout and paint
    server_cpu: float = 0.0  # the dashboard's CPU seconds
    ws_bytes_in: int = 0
    backmsgs: int = 0  # messages the page sent: its script-run requests, widget values, fragment ticks
    task_s: float = 0.0  # Chromium's main thread busy (CDP Performance TaskDuration)
    script_s: float = 0.0
    layout_s: float = 0.0  # layout and style recalculation


@dataclass
class Result:
    """One link's loads over the repeats, and the server-side figure for the same work."""

    link: str
    cold: list[Load] = field(default_factory=list)
    warm: list[Load] = field(default_factory=list)
    cached: list[Load] = field(default_factory=list)
    last_page: list[float] = field(default_factory=list)  # Runs: seconds to show the last page
    server_s: float | None = None
    figure_bytes: list[int] = field(default_factory=list)  # Compare: each chart's figure JSON

    def median(self, kind: str) -> float | None:
        loads: list[Load] = getattr(self, kind)
        return statistics.median(load.seconds for load in loads) if loads else None


# --- the stores ------------------------------------------------------------------------------


def _factory(url: str) -> sessionmaker[Session]:
    return session_factory(make_engine(url))


def seed_compare(folder: Path, points: Sequence[int], runs: Sequence[int]) -> list[Link]:
    """One store with SEEDED_RUNS long runs per point count; a Compare link per (runs, points)."""
    url = f"sqlite:///{folder / 'compare.db'}"
    factory = _factory(url)
    links = []
    for count in points:
        ids = bench.seed_long_runs(factory, max(max(runs), 1), count)
        for size in runs:
            chosen = ids[:size]
            links.append(
                Link(
                    f"compare {size} x {count:,}",
                    url,
                    "compare?runs=" + ",".join(map(str, chosen)),
                    charts=bench_viewers.expected_charts(factory, chosen),
                    run_ids=tuple(chosen),
                )
            )
    return links


def seed_runs(folder: Path, table_runs: Sequence[int]) -> list[Link]:
    """A store per size of the Runs page, its runs finished with a summary carrying series plots."""
    links = []
    for count in table_runs:
        url = f"sqlite:///{folder / f'runs-{count}.db'}"
        bench.seed_findable_runs(_factory(url), count)
        links.append(Link(f"runs {count:,}", url, "", table_runs=count))
    return links


def floor_links(folder: Path) -> list[Link]:
    """Streamlit's own pages (FLOOR_SCRIPT), served like the dashboard from a store it never reads."""
    script = folder / "streamlit_alone.py"
    script.write_text(FLOOR_SCRIPT)
    url = f"sqlite:///{folder / 'floor.db'}"
    return [Link(FLOOR_TABLE, url, "", script=script), Link(FLOOR_CHART, url, "?chart=1", charts=1, script=script)]


def server_seconds(link: Link, repeats: int) -> float:
    """dashboard.bench's in-process figure for the same work (median): Compare's reads, figures,
    tables and figure JSON; the Runs table's first page with its count."""
    factory = _factory(link.url)
    if link.charts:
        return bench.best_of(repeats, lambda: bench.compare_page(factory, list(link.run_ids)))
    return bench.best_of(repeats, lambda: bench.runs_table(factory))


def figure_sizes(link: Link) -> list[int]:
    """Characters of each chart's figure JSON in the default view, as st.plotly_chart sends it."""
    factory = _factory(link.url)
    with factory() as session:
        runs = queries.run_infos(session, list(link.run_ids))
        points = queries.concat_points([queries.points_frame(session, run.id, run.started_at) for run in runs])
    return [len(figure.to_json()) for _, figure in comparison.build_figures(runs, points, dict(sharing.DEFAULTS))]


# --- the pages -------------------------------------------------------------------------------


def _count_socket(page: Page, load: Load, began: list[float]) -> None:
    """Count the WebSocket's bytes in and messages out on `load`, and note when the first script
    run finished (seconds after began[0])."""
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    def on_socket(socket: Any) -> None:
        def received(payload: bytes | str) -> None:
            load.ws_bytes_in += len(payload)
            finished = load.script_finished_s is None and isinstance(payload, bytes)
            if finished and ForwardMsg.FromString(payload).WhichOneof("type") == "script_finished":
                load.script_finished_s = time.monotonic() - began[0]

        def sent(_payload: bytes | str) -> None:
            load.backmsgs += 1

        socket.on("framereceived", received)
        socket.on("framesent", sent)

    page.on("websocket", on_socket)


def _cpu_by_process(root: int, exclude: set[int]) -> dict[int, float]:
    """User + system CPU seconds of each live process under `root` (but `exclude`'s subtrees), its
    own only: a closed page's renderer, reaped meanwhile, must not count towards the next page."""
    ticks = {}
    for pid in bench_viewers._process_tree(root, exclude):
        fields = bench_viewers._stat_fields(pid)
        if fields is not None:
            ticks[pid] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return ticks


def _is_renderer(pid: int) -> bool:
    """Whether a process is one of Chromium's renderers (a page's scripts, layout and paint)."""
    try:
        return b"--type=renderer" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def _cpu(server: bench_viewers.Dashboard) -> tuple[dict[int, float], float]:
    """This side's CPU by process (Chromium, Playwright's driver, this process), and the dashboard's."""
    return _cpu_by_process(os.getpid(), {server.process.pid}), server.cpu()


def _cpu_since(server: bench_viewers.Dashboard, then: tuple[dict[int, float], float]) -> tuple[float, float, float]:
    """(browser side, its renderers, dashboard) CPU seconds since `then`; a process started
    meanwhile counts whole. The renderers' share is the page's own work: the rest of Chromium
    (its software compositor without a GPU, the network service) and the driver add steadily."""
    now = _cpu(server)
    spent = {pid: seconds - then[0].get(pid, 0.0) for pid, seconds in now[0].items()}
    renderers = sum(seconds for pid, seconds in spent.items() if _is_renderer(pid))
    return sum(spent.values()), renderers, now[1] - then[1]


async def _metrics(client: Any) -> dict[str, float]:
    reply = await client.send("Performance.getMetrics")
    return {metric["name"]: metric["value"] for metric in reply["metrics"]}


async def open_link(context: BrowserContext, server: bench_viewers.Dashboard, link: Link, timeout: float) -> Load:
    """Open `link` in a new page of `context`, wait until it is complete, close the page. CPU
    seconds are read from /proc (they hold up when other work shares the cores; wall time does not)."""
    page = await context.new_page()
    base = server.base
    try:
        client = await context.new_cdp_session(page)
        await client.send("Performance.enable")
        load, began = Load(0.0), [time.monotonic()]
        _count_socket(page, load, began)
        before = await _metrics(client)
        cpu = _cpu(server)
        began[0] = time.monotonic()
        await page.goto(f"{base}/{link.path}", wait_until="commit", timeout=timeout * 1000)
        await page.wait_for_function(link.ready, arg=link.charts, polling=POLL_MS, timeout=timeout * 1000)
        load.seconds = time.monotonic() - began[0]
        load.browser_cpu, load.renderer_cpu, load.server_cpu = _cpu_since(server, cpu)
        after = await _metrics(client)
        load.task_s = after["TaskDuration"] - before.get("TaskDuration", 0.0)
        load.script_s = after["ScriptDuration"] - before.get("ScriptDuration", 0.0)
        load.layout_s = sum(after[key] - before.get(key, 0.0) for key in ("LayoutDuration", "RecalcStyleDuration"))
        return load
    except Exception as error:
        try:
            shown = await page.evaluate(bench_viewers.DESCRIBE)
        except Exception:
            shown = "nothing readable"
        raise RuntimeError(f"{link.name}: not complete within {timeout:g} s: {shown}") from error
    finally:
        await page.close()


async def last_page(context: BrowserContext, base: str, link: Link, timeout: float) -> float:
    """On a complete Runs page, the seconds from asking for the last page (the page picker) until
    its rows show: every run stays reachable however many there are."""
    page = await context.new_page()
    try:
        await page.goto(f"{base}/{link.path}", wait_until="commit", timeout=timeout * 1000)
        await page.wait_for_function(bench_viewers.RUNS_READY, polling=POLL_MS, timeout=timeout * 1000)
        last = -(-link.table_runs // 200)
        if last == 1:
            return 0.0
        picker = page.get_by_label(f"page (of {last})")
        await picker.fill(str(last))
        began = time.monotonic()
        await picker.press("Enter")
        shown = f"Runs {(last - 1) * 200 + 1:,}–{link.table_runs:,} of {link.table_runs:,}"
        await page.wait_for_function(PAGE_CAPTION, arg=shown, polling=POLL_MS, timeout=timeout * 1000)
        return time.monotonic() - began
    finally:
        await page.close()


async def _new_context(browser: Browser) -> BrowserContext:
    return await browser.new_context(viewport={"width": 1400, "height": 1000})


async def measure(browser: Browser, folder: Path, link: Link, result: Result, timeout: float) -> None:
    """One repeat on a fresh dashboard: cold, warm and cached loads (and Runs' last page)."""
    server = bench_viewers.Dashboard(link.url, folder, script=link.script)
    try:
        first = await _new_context(browser)
        result.cold.append(await open_link(first, server, link, timeout))
        other = await _new_context(browser)
        result.warm.append(await open_link(other, server, link, timeout))
        result.cached.append(await open_link(first, server, link, timeout))
        if link.table_runs:
            result.last_page.append(await last_page(first, server.base, link, timeout))
        await first.close()
        await other.close()
    finally:
        server.stop()


async def _run_all(folder: Path, links: Sequence[Link], repeats: int, timeout: float) -> list[Result]:
    from playwright.async_api import async_playwright

    results = [Result(link.name) for link in links]
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(bench_viewers.CHROMIUM), args=bench_viewers.CHROMIUM_ARGS
        )
        try:
            for repeat in range(repeats):  # interleaved: a slow spell of the machine hits every link alike
                for link, result in zip(links, results):
                    print(f"{link.name}: repeat {repeat + 1} of {repeats} ...", file=sys.stderr, flush=True)
                    await measure(browser, folder, link, result, timeout)
        finally:
            await browser.close()
    return results


def run_benchmark(
    compare_runs: Sequence[int] = COMPARE_RUNS,
    points: Sequence[int] = POINTS,
    table_runs: Sequence[int] = TABLE_RUNS,
    repeats: int = 3,
    timeout: float = 120.0,
) -> list[Result]:
    """Seed the stores, open every link `repeats` times (cold, warm, cached), and return the
    results with the server-side figures and figure sizes."""
    with tempfile.TemporaryDirectory(prefix="unroll-browser-") as name:
        folder = Path(name)
        began = time.perf_counter()
        compare = seed_compare(folder, points, compare_runs) if compare_runs and points else []
        links = floor_links(folder) + compare + seed_runs(folder, table_runs)
        print(f"seeded in {time.perf_counter() - began:.1f} s", file=sys.stderr, flush=True)
        results = asyncio.run(_run_all(folder, links, repeats, timeout))
        for link, result in zip(links, results):
            if link.script != bench_viewers.APP:
                continue
            result.server_s = server_seconds(link, repeats)
            if link.charts:
                result.figure_bytes = figure_sizes(link)
    return results


# --- the report ------------------------------------------------------------------------------


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _ratio(seconds: float | None, alone: float | None) -> str:
    return "-" if seconds is None or not alone else f"{seconds / alone:.2f}"


def _median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def _warm(row: Result, figure: str, digits: int = 2, scale: float = 1.0) -> str:
    """The median of one figure over the warm loads."""
    values = [getattr(load, figure) for load in row.warm if getattr(load, figure) is not None]
    return f"{statistics.median(values) / scale:,.{digits}f}" if values else "-"


def table(results: Sequence[Result]) -> str:
    """Medians per link: seconds to complete cold, warm and cached, warm over Streamlit alone's
    warm (floor_of), Runs' last page, the server's in-process figure, and what a warm page cost:
    when the server's script run was over, CPU seconds of the browser side and of the dashboard,
    bytes and messages over the WebSocket, Chromium's main thread busy, and each chart's figure JSON."""
    header = (
        "link",
        "cold s",
        "warm s",
        "cached s",
        "warm / alone",
        "last page s",
        "in-process s",
        "warm: script done s",
        "browser CPU s",
        "renderer CPU s",
        "server CPU s",
        "WS KiB in",
        "msgs out",
        "main thread s",
        "figure KiB",
    )
    rows = [
        (
            row.link,
            _seconds(row.median("cold")),
            _seconds(row.median("warm")),
            _seconds(row.median("cached")),
            _ratio(row.median("warm"), floor.median("warm") if (floor := floor_of(row, results)) else None),
            _seconds(_median(row.last_page)),
            f"{row.server_s:.3f}" if row.server_s is not None else "-",
            _warm(row, "script_finished_s"),
            _warm(row, "browser_cpu"),
            _warm(row, "renderer_cpu"),
            _warm(row, "server_cpu"),
            _warm(row, "ws_bytes_in", 0, 1024),
            _warm(row, "backmsgs", 0),
            _warm(row, "task_s"),
            " + ".join(f"{size / 1024:,.0f}" for size in row.figure_bytes) or "-",
        )
        for row in results
    ]
    widths = [max(len(line[column]) for line in [header, *rows]) for column in range(len(header))]
    return "\n".join("  ".join(cell.rjust(width) for cell, width in zip(line, widths)) for line in [header, *rows])


def floor_of(row: Result, results: Sequence[Result]) -> Result | None:
    """The Streamlit-alone page a link compares with: the chart page for Compare, else the table page."""
    if row.link in (FLOOR_TABLE, FLOOR_CHART):
        return None
    wanted = FLOOR_CHART if row.link.startswith("compare") else FLOOR_TABLE
    return next((other for other in results if other.link == wanted), None)


def verdicts(results: Sequence[Result]) -> list[str]:
    """A line per issue 14 target that a measured link has, ending in met or MISSED, with the
    same load of Streamlit alone: the part of the target a page's own work may take."""
    lines = []
    for row in results:
        floor = floor_of(row, results)
        for kind in KINDS:
            target = TARGETS.get((row.link, kind))
            seconds = row.median(kind)
            if target is None or seconds is None:
                continue
            verdict = "met" if seconds < target else "MISSED"
            line = f"{row.link}, {kind}: {seconds:.2f} s (target < {target:g} s): {verdict}"
            alone = floor.median(kind) if floor else None
            if floor and alone is not None:
                line += f"; {floor.link}: {alone:.2f} s, so Unroll's own part: {seconds - alone:.2f} s"
            lines.append(line)
    return lines


def _sizes(text: str) -> list[int]:
    return [int(part.replace("_", "")) for part in text.split(",") if part.strip()]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m dashboard.bench --browser", description=(__doc__ or "").split("\n\n")[0]
    )
    parser.add_argument("--browser", action="store_true", help="(selects this benchmark in dashboard.bench)")
    parser.add_argument("--compare-runs", default="2,20", help="runs per Compare link, comma-separated")
    parser.add_argument("--points", default="2000,20000", help="points per run (half loss, half accuracy)")
    parser.add_argument("--table-runs", default="1000,10000", help="runs in the Runs page's store, comma-separated")
    parser.add_argument("--repeats", type=int, default=3, help="fresh servers per link; the report gives medians")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds a page may take to complete")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write every load as JSON")
    args = parser.parse_args(argv)
    if not bench_viewers.CHROMIUM.exists():
        print(f"{bench_viewers.CHROMIUM} is missing (apt-get install -y chromium)", file=sys.stderr)
        return 2
    results = run_benchmark(
        _sizes(args.compare_runs), _sizes(args.points), _sizes(args.table_runs), args.repeats, args.timeout
    )
    print(
        f"{os.cpu_count()} cores; medians of {args.repeats} fresh server(s) per link; seconds from navigation "
        "until every chart (Compare) or the table (Runs) is drawn"
    )
    print(table(results))
    print("\n".join(verdicts(results)))
    if args.json:
        payload = {"cores": os.cpu_count(), "results": [asdict(row) for row in results], "verdicts": verdicts(results)}
        args.json.write_text(json.dumps(payload, indent=2))
    return 0
