"""The Runs page's filters and sort in the URL: what a link says, what it left out, and the round
trip through the page's widgets."""

from dashboard import run_filters
from dashboard.queries import Range
from dashboard.run_filters import RunsView


def test_a_link_reads_every_kind_of_filter_and_round_trips():
    query = {
        "status": "failed,running",
        "group": ["sweep, 1", "b"],  # group names are free text: repeated, never split on commas
        "tag": "Baseline, e1",
        "starred": "1",
        "q": "  lstm baseline ",
        "source": "mlxtend",
        "cell": "gru,lstm",
        "hidden_units": "64, 128, 256..512",
        "learning_rate": "0.001..0.01,0.05",
        "clip_norm": "none",
        "bidirectional": "0",
        "sort": "test_accuracy",
        "order": "asc",
    }
    view = run_filters.from_query(query)
    assert view.problems == ()
    assert view.filters == {
        "status": ["failed", "running"],
        "group": ["sweep, 1", "b"],
        "tag": ["baseline", "e1"],
        "starred": True,
        "q": "lstm baseline",
        "source": "mlxtend",
        "cell": ["gru", "lstm"],
        "hidden_units": [64, 128, Range(256, 512)],
        "learning_rate": [Range(0.001, 0.01), 0.05],
        "clip_norm": [None],
        "bidirectional": [False],
    }
    assert (view.sort, view.descending) == ("test_accuracy", False)
    written = run_filters.to_query(view)
    assert written["group"] == ["sweep, 1", "b"]
    assert written["hidden_units"] == "64,128,256..512"
    assert run_filters.from_query(written) == RunsView(view.filters, view.sort, view.descending)
    widgets = run_filters.widget_values(view)  # the page's widgets hold the same view
    assert (widgets["tag"], widgets["hidden_units"], widgets["starred"]) == (
        ["baseline", "e1"],
        "64,128,256..512",
        True,
    )
    assert run_filters.from_query(run_filters.query_from_widgets(widgets)) == RunsView(
        view.filters, view.sort, view.descending
    )


def test_the_default_view_is_an_empty_query():
    assert run_filters.from_query({}) == RunsView()
    assert run_filters.to_query(RunsView()) == {}
    assert run_filters.query_from_widgets(run_filters.widget_values(RunsView())) == {}
    assert run_filters.from_query({"starred": "0", "q": " ", "order": "desc", "sort": "id"}) == RunsView()


def test_a_link_reports_every_value_it_left_out_by_parameter():
    view = run_filters.from_query(
        {
            "status": "done,failed",
            "cell": "transformer",
            "tag": "two words",
            "hidden_units": "abc,64,9..1",
            "learning_rate": "nan",
            "epochs": "1.5",
            "seed": "9" * 30,
            "max_steps": "none",
            "bidirectional": "maybe",
            "sort": "colour",
            "order": "up",
            "runs": "3,4",
        }
    )
    assert view.filters == {"status": ["failed"], "hidden_units": [64], "max_steps": [None]}
    assert (view.sort, view.descending) == ("id", True)
    assert list(view.problems) == [
        "status: 'done' is not one of queued, running, succeeded, failed, cancelled",
        "cell: 'transformer' is not one of rnn, lstm, gru, sru",
        "tag: 'two words' is not a tag (1 to 32 characters among a-z, 0-9, '-', '_' and '.')",
        "hidden_units: 'abc' is not a whole number or a range like 32..128",
        "hidden_units: '9..1' is not a range: its low end is above its high end",
        "learning_rate: 'nan' is not a number or a range like 0.001..0.01",
        "epochs: '1.5' is not a whole number, a range like 32..128, or none",
        f"seed: '{'9' * 30}' is not a whole number or a range like 32..128",
        "bidirectional: 'maybe' is not 1 or 0",
        "'runs' is not a setting of this page (status, group, tag, starred, q, source, sort, order, or a config "
        "field such as hidden_units)",
        "sort: 'colour' is not a column or config field to sort by",
        "order: 'up' is not asc or desc",
    ]


def test_a_link_cannot_ask_for_huge_lists_or_texts_and_refused_values_are_cut():
    many = run_filters.from_query({"hidden_units": ",".join(str(n) for n in range(1, 200))})
    assert len(many.filters["hidden_units"]) == run_filters.MAX_VALUES
    assert many.problems == ("hidden_units: a filter takes at most 50 values; 149 were left out",)
    long = run_filters.from_query({"q": "x" * 5000, "cell": "y" * 5000})
    assert len(long.filters["q"]) == run_filters.MAX_TEXT
    assert all(len(problem) < 120 for problem in long.problems)
