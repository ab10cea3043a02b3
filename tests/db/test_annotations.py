"""Renaming, tagging, noting and starring runs, on real SQLite files and a real PostgreSQL schema:
metadata on a run in any status, checked before anything is stored, never touching results."""

import pytest
from sqlalchemy import select

from db import queue
from db.models import Run, RunStatus
from db.run_config import ConfigError

CONFIG = {"name": "tiny", "max_steps": 5}


def run_in_status(factory, status: RunStatus) -> int:
    """A run brought to `status` through the real queue, with a point and (when finished) a summary."""
    with factory.begin() as session:
        run_id = queue.enqueue(session, CONFIG, group="g")
        if status == RunStatus.QUEUED:
            return run_id
        queue.claim(session, run_id, "w")
        queue.append_metrics(session, run_id, "w", [queue.Point("loss", 1, 0.0, 2.0, wall=5.0)])
        if status == RunStatus.SUCCEEDED:
            queue.finish(session, run_id, "w", {"steps": 1, "test_accuracy": 0.5})
        elif status == RunStatus.FAILED:
            queue.fail(session, run_id, "w", "boom")
        elif status == RunStatus.CANCELLED:
            queue.mark_cancelled(session, run_id, "w")
    return run_id


def results(factory, run_id):
    """Everything a run's results are: status, config, summary, figures and points."""
    with factory() as session:
        run = session.get(Run, run_id)
        points = queue.curve_arrays(session, run_id)
        return (
            run.status,
            run.config,
            run.summary,
            run.latest,
            run.progress_step,
            run.error,
            {name: array.tolist() for name, array in points.items()},
        )


def annotation(factory, run_id):
    with factory() as session:
        run = session.get(Run, run_id)
        return run.name, run.tag_list, run.notes, run.starred, run.change_count


@pytest.mark.parametrize("status", list(RunStatus))
def test_any_run_can_be_annotated_and_its_results_stay_as_they_are(factory, status):
    run_id = run_in_status(factory, status)
    before = results(factory, run_id)
    with factory() as session:
        token = queue.change_token(session)
    changes = annotation(factory, run_id)[-1]
    with factory.begin() as session:
        queue.annotate(
            session,
            run_id,
            name="  LSTM baseline ",
            tags=["Baseline", " e1 ", "e1", ""],
            notes="first try",
            starred=True,
        )
    assert annotation(factory, run_id) == ("LSTM baseline", ["baseline", "e1"], "first try", True, changes + 1)
    assert results(factory, run_id) == before
    with factory() as session:
        assert queue.change_token(session) != token  # pages showing the run redraw


def test_none_keeps_a_field_and_empty_values_clear_it(factory):
    run_id = run_in_status(factory, RunStatus.SUCCEEDED)
    changes = annotation(factory, run_id)[-1]
    with factory.begin() as session:
        queue.annotate(session, run_id, name="kept", tags="a, b", notes="some", starred=True)
    with factory.begin() as session:
        queue.annotate(session, run_id, starred=False)
    assert annotation(factory, run_id)[:4] == ("kept", ["a", "b"], "some", False)
    with factory.begin() as session:
        queue.annotate(session, run_id, tags=[], notes="   ")
    assert annotation(factory, run_id)[:4] == ("kept", [], None, False)
    with factory.begin() as session:
        queue.annotate(session, run_id)  # nothing asked: nothing written
    assert annotation(factory, run_id)[-1] == changes + 3


@pytest.mark.parametrize(
    "changes, expected",
    [
        ({"name": "   "}, [("name", "must not be blank")]),
        ({"name": "n" * 201}, [("name", "must be at most 200 characters, not 201")]),
        ({"name": 7}, [("name", "must be text, not int")]),
        ({"notes": "x" * 10_001}, [("notes", "must be at most 10,000 characters, not 10,001")]),
        ({"starred": "yes"}, [("starred", "must be true or false, not 'yes'")]),
        (
            {"tags": ["ok", "two words", "é", "x" * 33]},
            [
                ("tags", f"'two words' is not a tag: use {queue.TAG_RULE}"),
                ("tags", f"'é' is not a tag: use {queue.TAG_RULE}"),
                ("tags", f"'{'x' * 33}' is not a tag: use {queue.TAG_RULE}"),
            ],
        ),
        ({"tags": [f"t{i}" for i in range(21)]}, [("tags", "a run takes at most 20 tags, not 21")]),
        ({"name": "", "starred": 1}, [("name", "must not be blank"), ("starred", "must be true or false, not '1'")]),
    ],
)
def test_bad_input_names_each_field_and_nothing_is_stored(factory, changes, expected):
    run_id = run_in_status(factory, RunStatus.RUNNING)
    with factory.begin() as session:
        queue.annotate(session, run_id, name="before", tags=["old"], notes="old notes")
    before = annotation(factory, run_id)
    with pytest.raises(ConfigError) as refused, factory.begin() as session:
        queue.annotate(session, run_id, **{"notes": "would be new", **changes})
    assert refused.value.errors == expected
    assert annotation(factory, run_id) == before


def test_tags_are_trimmed_lower_cased_kept_once_and_read_from_commas():
    assert queue.normalise_tags([" Baseline", "E1", "e1", "", "v2.1_final-b"]) == ["baseline", "e1", "v2.1_final-b"]
    assert queue.parse_tags("Baseline, e1,,  ") == ["baseline", "e1"]
    assert queue.normalise_tags("one,two") == ["one", "two"]  # a string is never read letter by letter
    assert queue.normalise_tags(["x" * 32]) == ["x" * 32]
    assert len(queue.normalise_tags([f"t{i}" for i in range(20)])) == 20
    with pytest.raises(ConfigError, match="'a;b' is not a tag"):
        queue.parse_tags("a;b")


def test_a_run_that_does_not_exist_cannot_be_annotated(factory):
    for changes in ({"starred": True}, {}):
        refused = pytest.raises(queue.TransitionError, match="cannot annotate: run 99 does not exist")
        with refused, factory.begin() as session:
            queue.annotate(session, 99, **changes)


def test_annotations_survive_a_retry_and_run_again_uses_the_new_name(factory):
    run_id = run_in_status(factory, RunStatus.FAILED)
    with factory.begin() as session:
        queue.annotate(session, run_id, name="renamed", tags=["keep"], notes="why", starred=True)
        queue.retry(session, run_id)
    assert annotation(factory, run_id)[:4] == ("renamed", ["keep"], "why", True)
    with factory.begin() as session:
        queue.claim(session, run_id, "w")
        queue.fail(session, run_id, "w", "again")
        new = queue.rerun(session, run_id)
    with factory() as session:
        again = session.get(Run, new)
        assert (again.name, again.config["name"], again.tag_list, again.starred) == ("renamed", "tiny", [], False)
        assert session.scalars(select(Run.name).order_by(Run.id)).all() == ["renamed", "renamed"]
