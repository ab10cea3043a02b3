"""Launch runs: one run, a grid (the product of chosen values) or a preset, each as one group."""

import streamlit as st
from typing import get_args

from dashboard import launching
from dashboard.forms import FieldSpec, clean_values, field_specs
from dashboard.settings import NotAllowed
from dashboard.state import PASSWORD_KEY, sessions, settings
from dashboard.ui import md_escape
from db import queue
from db.run_config import Cell, ConfigError, Implementation, Mode
from rnncore.presets import PRESETS

# The name prefixes a grid's run names ("my run cell=gru mode=dynamic"), so it names no cell or mode.
FORM_DEFAULTS = {"name": "my run", "max_steps": 300, "target_accuracy": 0.9}


def _allowed(spec: FieldSpec) -> str:
    if spec.minimum is None and spec.maximum is None:
        return spec.help
    low = "" if spec.minimum is None else f"from {spec.minimum:g} "
    high = "" if spec.maximum is None else f"up to {spec.maximum:g}"
    return f"{spec.help} Allowed: {low}{high}".strip()


def _widget(spec: FieldSpec):
    default = FORM_DEFAULTS.get(spec.name, spec.default)
    key = f"field_{spec.name}"
    if spec.kind == "choice":
        return st.selectbox(spec.label, spec.options, index=spec.options.index(default), key=key, help=spec.help)
    if spec.kind == "bool":
        return st.checkbox(spec.label, value=default, key=key, help=spec.help)
    if spec.kind == "text":
        return st.text_input(spec.label, value=default or "", key=key, help=spec.help)
    step = 1 if spec.kind == "int" else None
    placeholder = "not set" if spec.optional else None
    return st.number_input(spec.label, value=default, step=step, key=key, help=_allowed(spec),
                           placeholder=placeholder, format=None if spec.kind == "int" else "%g")


def _queue(configs, group, slots) -> None:
    """Validate every config, then queue them all as one group or none; report on the page."""
    valid, errors = launching.validate_all(configs)
    if errors:
        for field, message in errors.items():
            slot = slots.get(field)
            (slot.error if slot else st.error)(md_escape(f"{field}: {message}"))
        st.error("Nothing was queued: fix the fields marked above.")
        return
    try:
        with sessions().begin() as session:
            run_ids = launching.launch(session, valid, group, settings(), st.session_state.get(PASSWORD_KEY))
    except (ConfigError, queue.QueueFullError, NotAllowed) as refused:
        st.error(md_escape(f"Nothing was queued: {refused}"))
        return
    where = f" as group {md_escape(group)}" if group else ""
    if len(run_ids) == 1:
        st.success(f"Queued run {run_ids[0]} ({md_escape(valid[0].name)}){where}. Follow it on the Runs page.")
    else:
        st.success(f"Queued {len(run_ids)} runs (ids {run_ids[0]} to {run_ids[-1]}){where}. "
                   "Follow them on the Runs page.")


st.title("Launch")
limits = settings()
if limits.max_steps:
    st.caption(f"This dashboard runs at most {limits.max_steps} steps per run.")
configure, presets = st.tabs(["Runs and grids", "Presets"])

with configure:
    st.caption("Every field comes from the run config schema; a field that is not allowed says why, "
               "and nothing is queued until every run of the launch is valid.")
    columns = st.columns(3)
    values, slots = {}, {}
    for index, spec in enumerate(field_specs()):
        with columns[index % 3]:
            values[spec.name] = _widget(spec)
            slots[spec.name] = st.empty()

    st.subheader("Grid")
    st.caption("Choose several values to queue the product of them all (empty: the value above). "
               "Seed repeats run each combination with seeds seed, seed+1, ...")
    grid = st.columns(3)
    choices = {
        "cell": grid[0].multiselect("cells to try", get_args(Cell), key="grid_cell"),
        "mode": grid[1].multiselect("modes to try", get_args(Mode), key="grid_mode"),
        "implementation": grid[2].multiselect("implementations to try", get_args(Implementation),
                                              key="grid_implementation"),
    }
    number_lists = {"hidden_units": grid[0].text_input("hidden units to try", key="grid_hidden_units",
                                                      placeholder="e.g. 32, 64, 128"),
                    "n_steps": grid[1].text_input("sequence lengths to try (series n_steps)", key="grid_n_steps",
                                                  placeholder="e.g. 20, 50, 100")}
    repeats = grid[2].number_input("seed repeats", min_value=1, max_value=100, value=1, step=1, key="grid_repeats")
    grid_errors = {}
    for field, text in number_lists.items():
        try:
            choices[field] = launching.parse_int_list(text)
        except ValueError as error:
            grid_errors[field] = str(error)
            st.error(md_escape(f"{field.replace('_', ' ')} list: {error}"))
    configs = launching.grid_configs(clean_values(values), choices, int(repeats))
    count = len(configs)
    group = st.text_input("group", key="launch_group",
                          placeholder="optional for one run; a grid is named 'grid <time>' if empty")
    st.info(f"This launch queues **{count}** run{'s' if count != 1 else ''} "
            f"(queue limit {limits.max_queued}).")
    if st.button(f"Queue {count} run{'s' if count != 1 else ''}", type="primary", key="queue_runs",
                 disabled=bool(grid_errors)):
        name = group.strip() or (launching.default_group("grid") if count > 1 else None)
        _queue(configs, name, slots)

with presets:
    st.caption("Each preset queues the runs of one classic experiment as a group; compare them on Compare "
               "(group by the field that differs).")
    for preset in PRESETS.values():
        with st.container(border=True):
            st.subheader(preset.title)
            st.write(preset.reproduces)
            names = [config["name"] for config in preset.configs]
            st.caption("Runs: " + ", ".join(names))
            if st.button(f"Queue {len(names)} runs", key=f"preset_{preset.name}"):
                _queue(preset.configs, launching.default_group(preset.name), {})
