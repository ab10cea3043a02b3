"""The Compare page's state in the URL: what a link says, and what it held that was left out."""

from dashboard import sharing
from dashboard.comparison import GROUP_FIELDS
from db.presets import PRESETS


def test_a_link_reports_every_value_it_left_out():
    state = sharing.from_query(
        {
            "runs": "999,abc,,999,-1",
            "x": "banana",
            "smooth": "2",
            "target": "most",
            "log": "maybe",
            "group": "'; drop",
            "band": "?",
            "view": "e9",
            "rnus": "3",
        },
        GROUP_FIELDS,
    )
    assert state == {**sharing.DEFAULTS, "runs": [999]}  # what was readable is kept; the rest is default
    assert state.problems == [
        "runs: 'abc' is not a run id",
        "runs: '-1' is not a run id",
        "x: 'banana' is not one of step, seconds, wall",
        "smooth: '2' is not a number from 0 to 0.99",
        "target: 'most' is not a number from 0.01 to 1",
        "log: 'maybe' is not 1 or 0",
        'group: "\'; drop" is not a config field',
        "band: '?' is not one of minmax, std",
        "view: 'e9' is not one of metrics, e1, e2",
        "'rnus' is not a setting of this page (runs, x, view, smooth, log, group, band, baseline, target)",
    ]


def test_a_clean_link_has_no_problems_and_round_trips_with_its_view():
    query = {"runs": "3,4", "x": "wall", "view": "e1", "smooth": "0.5", "log": "0", "target": "0.95"}
    state = sharing.from_query(query, GROUP_FIELDS)
    assert state.problems == []
    assert (state["view"], state["log"], state["target"]) == ("e1", False, 0.95)
    assert sharing.to_query(state) == {"runs": "3,4", "x": "wall", "view": "e1", "smooth": "0.5", "target": "0.95"}
    assert sharing.from_query({}).problems == []
    assert sharing.from_query({}) == sharing.DEFAULTS


def test_refused_values_are_cut_in_messages():
    [problem] = sharing.from_query({"x": "y" * 10_000}).problems
    assert len(problem) < 100
    assert problem.startswith("x: 'yyy")
    assert "…" in problem


def test_a_link_cannot_name_ids_no_database_holds_or_compare_thousands_of_runs():
    huge, long = "9" * 20, "1" * 5000  # the second would overflow int() itself
    state = sharing.from_query({"runs": f"3,{huge},{long},4"})
    assert state["runs"] == [3, 4]
    assert sum("is not a run id" in problem for problem in state.problems) == 2
    many = sharing.from_query({"runs": ",".join(str(run_id) for run_id in range(1, 1001))})
    assert many["runs"] == list(range(1, sharing.MAX_COMPARED + 1))
    assert any(f"at most {sharing.MAX_COMPARED} runs; 950 were left out" in problem for problem in many.problems)


def test_a_presets_link_opens_the_view_that_answers_it():
    for preset in PRESETS.values():
        assert preset.view in sharing.VIEWS, preset.name  # db/ may not import the views: checked here
    assert sharing.preset_query([7, 8], PRESETS["e2-unrolling-cost"].view) == {"runs": "7,8", "view": "e2"}
    assert sharing.from_query({"runs": "7,8", "view": "e2"}, GROUP_FIELDS).problems == []
    assert sharing.preset_query([7], "metrics") == {"runs": "7"}  # the default view stays out of the link
    assert sharing.preset_query([7], "e9") == {"runs": "7"}  # a view this dashboard lacks: the default
