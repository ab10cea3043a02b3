"""The server-side dashboard benchmark (`python -m dashboard.bench`) on a tiny store: every figure it
prints is measured, and the Compare work it times is the page's own."""

import re

from dashboard import bench


def test_the_server_side_benchmark_prints_every_figure_on_a_tiny_store(capsys):
    argv = ["--runs", "2", "--points", "200", "--table-runs", "20", "--filter-runs", "60", "--repeats", "1"]
    assert bench.main(argv) == 0
    out = capsys.readouterr().out
    assert re.search(r"Compare, 2 runs: [\d.]+ s \([\d,]+ points plotted\); naive all-points", out), out
    assert re.search(r"Compare, 2 runs, rebuilt from cached points .*: [\d.]+ s", out), out
    assert re.search(r"Runs table, 20 runs: [\d.]+ s; target < 0.5 s: (met|MISSED)", out), out
    assert len(re.findall(r"Runs page data, 60 runs, .* \([\d,]+ match\)", out)) == len(bench.FOUND_VIEWS), out


def test_a_live_rebuild_builds_the_figures_and_tables_the_page_shows(tmp_path):
    from db.engine import make_engine, session_factory

    factory = session_factory(make_engine(f"sqlite:///{tmp_path / 'store.db'}"))
    run_ids = bench.seed_long_runs(factory, 3, 400)
    built = bench.live_rebuild(factory, run_ids)()
    assert [run.id for run in built.runs] == run_ids
    assert len(built.figures) >= 2
    assert all(len(figure.data) >= 3 for _, figure in built.figures)  # at least a trace per run in every chart
    assert len(built.per_run) == 3
