"""Hosting: settings from the environment or secrets, read-only mode, the launch password."""

from pathlib import Path

import pytest
from sqlalchemy import func, select, update
from streamlit.testing.v1 import AppTest

from dashboard import actions, launching
from dashboard.settings import NotAllowed, Settings, SettingsError, resolve
from db.models import Run, RunStatus

APP = str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py")
SUBMIT = "queue_runs"


def runs_in(factory) -> int:
    with factory() as session:
        return session.scalar(select(func.count()).select_from(Run))


def status_of(factory, run_id):
    with factory() as session:
        return session.get(Run, run_id).status


# --- settings -------------------------------------------------------------------------


def test_defaults_give_a_local_dashboard_that_works_as_always():
    settings = resolve({}, {})
    assert settings == Settings()
    assert settings.db_url == "sqlite:///unroll.db"
    assert not settings.readonly
    assert settings.worker_autostart
    settings.check_write(None)  # no password set: nothing is asked


def test_secrets_configure_a_hosted_dashboard_and_the_environment_wins():
    secrets = {
        "UNROLL_DB_URL": "postgresql+psycopg://u:p@db/unroll",
        "UNROLL_READONLY": True,
        "UNROLL_WORKER": "off",
        "UNROLL_MAX_QUEUED": 20,
        "UNROLL_MAX_STEPS": "1000",
    }
    settings = resolve({}, secrets)
    assert (settings.db_url, settings.readonly, settings.worker_autostart) == (
        "postgresql+psycopg://u:p@db/unroll",
        True,
        False,
    )
    assert (settings.max_queued, settings.max_steps) == (20, 1000)
    assert resolve({"UNROLL_READONLY": "0"}, secrets).readonly is False


@pytest.mark.parametrize(
    "name, value",
    [
        ("UNROLL_READONLY", "maybe"),
        ("UNROLL_MAX_QUEUED", "lots"),
        ("UNROLL_MAX_QUEUED", "0"),
        ("UNROLL_MAX_STEPS", "-5"),
    ],
)
def test_a_setting_that_cannot_be_understood_is_named(name, value):
    with pytest.raises(SettingsError, match=name):
        resolve({name: value}, {})


def test_an_empty_variable_does_not_switch_off_what_the_secrets_set():
    settings = resolve(
        {"UNROLL_LAUNCH_PASSWORD": "", "UNROLL_READONLY": ""}, {"UNROLL_LAUNCH_PASSWORD": "pw", "UNROLL_READONLY": True}
    )
    assert settings.readonly
    assert settings.launch_password == "pw"


def test_a_read_only_host_starts_no_worker_of_its_own():
    assert Settings().starts_worker
    assert not Settings(worker_autostart=False).starts_worker
    assert not Settings(readonly=True).starts_worker


def test_read_only_refuses_every_write_even_with_the_password():
    with pytest.raises(NotAllowed, match="read-only"):
        Settings(readonly=True, launch_password="pw").check_write("pw")


def test_the_launch_password_must_match():
    settings = Settings(launch_password="correct horse")
    settings.check_write("correct horse")
    for wrong in (None, "", "correct", "correct horse "):
        with pytest.raises(NotAllowed, match="password"):
            settings.check_write(wrong)


# --- the app --------------------------------------------------------------------------


def test_read_only_hides_launching_and_actions_and_says_so(app_factory, seed, open_page, monkeypatch):
    seed("visible")
    monkeypatch.setenv("UNROLL_READONLY", "1")
    at = open_page()
    assert not at.exception
    assert "read-only" in at.info[0].value
    assert at.dataframe[0].value["name"].tolist() == ["visible"]
    keys = {button.key for button in at.button}
    assert "compare_selected" in keys
    assert not keys & {"cancel_runs", "rerun_runs", "retry_runs", "delete_runs"}
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        open_page("launch")  # the server does not serve the page at all


def test_read_only_refuses_a_launch_on_the_server_side_whatever_the_page_does(app_factory):
    with app_factory.begin() as session, pytest.raises(NotAllowed, match="read-only"):
        launching.launch(session, [{"name": "sneaky", "max_steps": 1}], None, Settings(readonly=True), None)
    assert runs_in(app_factory) == 0


def test_read_only_can_come_from_streamlit_secrets(app_factory):
    at = AppTest.from_file(APP, default_timeout=30)
    at.secrets["UNROLL_READONLY"] = True
    at.run()
    assert not at.exception
    assert "read-only" in at.info[0].value
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page("app_pages/launch.py")


def test_launching_asks_for_the_password_and_a_wrong_one_changes_nothing(app_factory, open_page, monkeypatch, shown):
    monkeypatch.setenv("UNROLL_LAUNCH_PASSWORD", "s3cret")
    at = open_page("launch")
    at.button(key=SUBMIT).click().run()
    assert "launch password is missing or wrong" in " ".join(shown(error) for error in at.error)
    assert runs_in(app_factory) == 0
    at.text_input(key="launch_password").set_value("guess").run()
    at.button(key=SUBMIT).click().run()
    assert runs_in(app_factory) == 0
    at.text_input(key="launch_password").set_value("s3cret").run()
    at.button(key=SUBMIT).click().run()
    assert not at.exception
    assert runs_in(app_factory) == 1


def test_run_actions_need_the_password_too(app_factory, seed, open_page, monkeypatch, shown):
    run_id = seed("finished")
    monkeypatch.setenv("UNROLL_LAUNCH_PASSWORD", "s3cret")
    at = open_page()
    at.session_state["runs_selected"] = [run_id]
    at.button(key="rerun_runs").click().run()
    assert "password" in shown(at.error[0])
    assert runs_in(app_factory) == 1
    at.session_state["runs_selected"] = [run_id]
    at.button(key="delete_runs").click().run()
    at.button(key="confirm_delete_yes").click().run()
    assert "password" in shown(at.error[0])
    assert runs_in(app_factory) == 1
    at.text_input(key="launch_password").set_value("s3cret").run()
    at.session_state["runs_selected"] = [run_id]
    at.button(key="rerun_runs").click().run()
    assert runs_in(app_factory) == 2
    assert status_of(app_factory, run_id) == RunStatus.SUCCEEDED


def test_annotating_a_run_checks_read_only_mode_and_the_password_on_the_server(app_factory, seed):
    run_id = seed("kept")
    values = {"name": "changed", "tags": "spam", "notes": "n", "starred": True}
    for settings, password, says in (
        (Settings(readonly=True, launch_password="pw"), "pw", "read-only"),
        (Settings(launch_password="pw"), "nope", "password is missing or wrong"),
    ):
        [(kind, message)] = actions.annotate(run_id, app_factory, settings, password, **values)
        assert kind == "error"
        assert says in message
    with app_factory() as session:
        run = session.get(Run, run_id)
        assert (run.name, run.tags, run.notes, run.starred) == ("kept", "", None, False)
    [(kind, _message)] = actions.annotate(run_id, app_factory, Settings(launch_password="pw"), "pw", **values)
    assert kind == "success"


def test_the_host_step_limit_refuses_a_long_run(app_factory, open_page, monkeypatch, shown):
    monkeypatch.setenv("UNROLL_MAX_STEPS", "100")
    at = open_page("launch")
    at.number_input(key="field_max_steps").set_value(5000)
    at.button(key=SUBMIT).click().run()
    assert "at most 100 steps" in " ".join(shown(error) for error in at.error)
    assert runs_in(app_factory) == 0


def test_the_database_password_is_never_shown(pg_schema_url, open_page, monkeypatch, shown):
    with_password = pg_schema_url.replace("postgres@", "postgres:hunter2@")  # trust auth ignores it
    monkeypatch.setenv("UNROLL_DB_URL", with_password)
    monkeypatch.setenv("UNROLL_WORKER", "off")
    at = open_page()
    assert not at.exception
    shown = " ".join(str(caption.value) for caption in at.sidebar.caption)
    assert "Database: postgresql+psycopg://postgres:***@127.0.0.1" in shown
    assert "hunter2" not in shown


def test_run_again_and_retry_keep_within_the_queue_and_step_limits(app_factory, seed):
    first, second = seed("first", steps=50), seed("second", steps=50)
    with app_factory.begin() as session:
        session.execute(update(Run).where(Run.id == second).values(status=RunStatus.FAILED))

    def apply(key, run_id, settings):
        [(kind, message)] = actions.apply(key, [run_id], app_factory, settings, None)
        return kind, message

    assert apply("rerun", first, Settings(max_queued=1))[0] == "success"
    assert apply("rerun", first, Settings(max_queued=1)) == (
        "error",
        f"the queue already holds 1 runs, its limit: run {first} was not run again",
    )
    assert "limit" in apply("retry", second, Settings(max_queued=1))[1]
    kind, message = apply("retry", second, Settings(max_steps=10))
    assert kind == "error"
    assert "at most 10 steps" in message
    assert status_of(app_factory, second) == RunStatus.FAILED
    assert runs_in(app_factory) == 3


def test_a_database_that_cannot_be_opened_is_one_sentence_on_the_page(tmp_path, open_page, monkeypatch, shown):
    (tmp_path / "folder.db").mkdir()
    url = f"sqlite:///{tmp_path / 'folder.db'}"
    monkeypatch.setenv("UNROLL_DB_URL", url)
    at = open_page()
    assert not at.exception
    [error] = at.error
    assert shown(error) == (
        f"Unroll cannot open the database at {url}: the path is a folder, not a SQLite file. "
        "Fix UNROLL_DB_URL in the environment or .streamlit/secrets.toml."
    )


def test_the_served_config_skips_streamlits_full_collection_after_every_script_run():
    """Issue 15: with a room of open pages each ticking every 2 s, Streamlit's gc.collect(2) after
    every run (fragment ticks included) was most of the server's CPU; the repository's config,
    which `streamlit run` reads from the repository root, turns it off."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11 and later

    config = tomllib.loads((Path(APP).parents[1] / ".streamlit" / "config.toml").read_text())
    assert config["runner"]["postScriptGC"] is False
