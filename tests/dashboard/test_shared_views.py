"""Work shared between viewers: one Compare link opened by many people builds its figures and
tables once, and a new point in the store makes the next view fresh (nothing stale because of
caching)."""

from db import queue


def _compare_state(run_ids):
    from dashboard import sharing

    return {**sharing.DEFAULTS, "runs": list(run_ids)}


def test_one_comparison_serves_every_viewer_until_the_store_changes(app_factory, seed, monkeypatch):
    from dashboard import state

    first, second = seed("static", mode="static"), seed("dynamic", mode="dynamic")
    with app_factory() as session:
        token = queue.change_token(session)
    view = state.comparison_for(token, _compare_state([first, second]))
    again = state.comparison_for(token, _compare_state([first, second]))  # a second viewer, same link
    assert again is view  # shared, not rebuilt or copied
    assert [run.id for run in view.runs] == [first, second]
    assert len(view.figures) == 2

    with app_factory.begin() as session:  # a third run starts and records a point: the store moves
        running = queue.enqueue(session, {"name": "live", "max_steps": 99})
        queue.claim_next(session, "w")
        queue.append_metrics(session, running, "w", [queue.Point("loss", 1, 0.0, 2.0)])
    with app_factory() as session:
        moved = queue.change_token(session)
    assert moved != token
    # The compared runs did not change: the view is not rebuilt for another run's point.
    assert state.comparison_for(moved, _compare_state([first, second])) is view
    fresh = state.comparison_for(moved, _compare_state([first, second, running]))
    assert fresh is not view
    assert [run.id for run in fresh.runs] == [first, second, running]
    assert fresh.per_run["steps"].tolist()[-1] == 1

    with app_factory.begin() as session:  # the compared live run records a second point
        queue.append_metrics(session, running, "w", [queue.Point("loss", 2, 0.1, 1.5)])
    with app_factory() as session:
        later = queue.change_token(session)
    newer = state.comparison_for(later, _compare_state([first, second, running]))
    assert newer is not fresh
    assert newer.per_run["steps"].tolist()[-1] == 2


def test_a_renamed_run_rebuilds_the_views_that_show_it(app_factory, seed):
    """What keys a view is every field of its runs, not only their progress: a name is in the legends."""
    from dashboard import state
    from db.models import Run

    run_id = seed("before")
    with app_factory() as session:
        view = state.comparison_for(queue.change_token(session), _compare_state([run_id]))
    with app_factory.begin() as session:
        session.get(Run, run_id).name = "after"
    with app_factory() as session:
        renamed = state.comparison_for(queue.change_token(session), _compare_state([run_id]))
    assert renamed is not view
    assert [run.name for run in renamed.runs] == ["after"]
    assert "after" in renamed.figures[0][1].data[-1].name


def test_different_settings_get_their_own_comparison(app_factory, seed):
    from dashboard import state

    run_id = seed("one")
    with app_factory() as session:
        token = queue.change_token(session)
    by_step = state.comparison_for(token, _compare_state([run_id]))
    by_seconds = state.comparison_for(token, {**_compare_state([run_id]), "x": "seconds"})
    assert by_step is not by_seconds
    assert by_seconds.figures[0][0] == "steps"  # against a clock, "steps over time" comes first
