"""Launch runs: one run, a grid (the product of chosen values) or a preset, each as one group.

The form is checked on every rerun: each refused field says why beside it, and the queue
button stays disabled until every run of the launch is valid. A grid is counted before it
is built, so a request too large for the queue costs nothing.
"""

from typing import get_args

import streamlit as st

from dashboard import forms, launching, sharing
from dashboard.forms import FieldSpec
from dashboard.settings import NotAllowed
from dashboard.state import PASSWORD_KEY, sessions, settings
from dashboard.ui import md_escape
from db import queue
from db.presets import PRESETS, repeated
from db.run_config import Cell, ConfigError, Implementation, Mode, validate_config

SPECS = {spec.name: spec for spec in forms.field_specs()}
PRESET_REPEATS = 3


def _allowed(spec: FieldSpec) -> str:
    if spec.minimum is None and spec.maximum is None:
        return spec.help
    low = "" if spec.minimum is None else f"from {spec.minimum:g} "
    high = "" if spec.maximum is None else f"up to {spec.maximum:g}"
    return f"{spec.help} Allowed: {low}{high}".strip()


def _widget(spec: FieldSpec):
    default = forms.initial_value(spec)
    key = f"field_{spec.name}"
    if spec.kind == "choice":
        return st.selectbox(spec.label, spec.options, index=spec.options.index(default), key=key, help=spec.help)
    if spec.kind == "bool":
        return st.checkbox(spec.label, value=default, key=key, help=spec.help)
    if spec.kind == "text":
        return st.text_input(spec.label, value=default or "", key=key, help=spec.help)
    step = 1 if spec.kind == "int" else None
    number_format = None if spec.kind == "int" else "%g"
    if not spec.optional:
        return st.number_input(spec.label, value=default, step=step, key=key, help=_allowed(spec), format=number_format)
    # Streamlit lets a number box be cleared only when it starts empty (value=None), so a
    # prefilled optional field (max steps) gets its first value through the session state.
    if default is not None and key not in st.session_state:
        st.session_state[key] = default
    return st.number_input(
        spec.label, value=None, step=step, key=key, help=_allowed(spec), placeholder="not set", format=number_format
    )


def _form() -> tuple[dict, dict]:
    """Draw the fields that apply, group by group: (values, {field: slot for its message})."""
    values = {"name": _widget(SPECS["name"])}
    slots = {"name": st.empty()}
    for title, names in forms.GROUPS.items():
        with st.container(border=True):
            st.subheader(title)
            columns = st.columns(3)
            shown = 0
            for name in names:
                if name not in forms.applicable_fields(values):
                    continue
                with columns[shown % 3]:
                    values[name] = _widget(SPECS[name])
                    slots[name] = st.empty()
                shown += 1
    return values, slots


def _grid(applicable: set) -> tuple[dict, int, bool]:
    """The grid's inputs, for the fields that apply: (choices, seed repeats, whether every list reads)."""
    st.subheader("Grid")
    st.caption(
        "Choose several values to queue the product of them all (empty: the value above). "
        "Seed repeats run each combination with seeds seed, seed+1, ... Each list takes at most "
        f"{launching.MAX_LIST_VALUES} values."
    )
    columns = st.columns(3)
    choices, lists_ok = {}, True
    multiselects = {
        "cell": ("cells to try", Cell),
        "mode": ("modes to try", Mode),
        "implementation": ("implementations to try", Implementation),
    }
    for column, (field, (text, options)) in zip(columns, multiselects.items()):
        if field in applicable:
            choices[field] = column.multiselect(text, get_args(options), key=f"grid_{field}")
    lists = {
        "hidden_units": (columns[0], "hidden units to try", "e.g. 32, 64, 128"),
        "n_steps": (columns[1], "sequence lengths to try (series n steps)", "e.g. 20, 50, 100"),
    }
    for field, (column, text, example) in lists.items():
        if field not in applicable:
            continue
        typed = column.text_input(text, key=f"grid_{field}", placeholder=example, max_chars=400)
        try:
            choices[field] = launching.parse_int_list(typed)
        except ValueError as error:
            lists_ok = False
            column.error(md_escape(f"{text}: {error}"))
    repeats = columns[2].number_input("seed repeats", min_value=1, max_value=100, value=1, step=1, key="grid_repeats")
    return choices, int(repeats), lists_ok


def _check(values: dict, choices: dict, repeats: int, slots: dict, max_runs: int) -> tuple[list, str | None]:
    """(the launch's valid configs, or why nothing can be queued); each refusal is shown beside its field.

    The grid is counted before it is built: one larger than the queue is refused at no cost.
    """
    try:
        configs = launching.grid_configs(forms.clean_values(values), choices, repeats, max_runs=max_runs)
    except launching.GridTooLarge as refused:
        return [], str(refused)
    valid, errors = launching.validate_all(configs)  # the host's step limit is checked when queueing
    for field, message in errors.items():
        (slots[field].error if field in slots else st.error)(md_escape(forms.error_text(field, message)))
    return valid, ("fix the fields marked above" if errors else None)


def _queue(configs: list, group: str | None, view: str | None = None) -> None:
    """Queue validated runs as one group or none (the server checks the password and limits again).
    A preset's launch links to Compare on the view that answers its question (`view`)."""
    try:
        with sessions().begin() as session:
            run_ids = launching.launch(session, configs, group, settings(), st.session_state.get(PASSWORD_KEY))
    except (ConfigError, queue.QueueFullError, NotAllowed) as refused:
        st.error(md_escape(f"Nothing was queued: {refused}"))
        return
    where = f" as group {md_escape(group)}" if group else ""
    if len(run_ids) == 1:
        st.success(f"Queued run {run_ids[0]} ({md_escape(configs[0].name)}){where}. Follow it on the Runs page.")
    else:
        st.success(
            f"Queued {len(run_ids)} runs (ids {run_ids[0]} to {run_ids[-1]}){where}. Follow them on the Runs page."
        )
    if view is not None:
        st.page_link(
            "app_pages/compare.py",
            label="Compare them as they train",
            icon=":material/stacked_line_chart:",
            query_params=sharing.preset_query(run_ids, view),
        )


def _with_repeats(name: str) -> bool:
    """The preset's "run with 3 repeats" box: its runs with seeds 1 to 3, so Compare can tell a real
    difference from run-to-run noise (one run a side is a single measurement)."""
    return st.checkbox(
        f"run with {PRESET_REPEATS} repeats",
        key=f"preset_repeats_{name}",
        help=f"Queue every run of the preset with seeds 1 to {PRESET_REPEATS}, in the same group: Compare then "
        "gives each ratio an interval over the repeats, not only over the steps of a single run.",
    )


def _runs(count: int) -> str:
    return "run" if count == 1 else "runs"


st.title("Launch")
limits = settings()
if limits.max_steps:
    st.caption(f"This dashboard runs at most {limits.max_steps} steps per run.")
st.caption(md_escape(f"MNIST for runs with no data path, as this machine sees it: {launching.mnist_source()}."))
configure, presets = st.tabs(["Runs and grids", "Presets"])

with configure:
    st.caption(
        "Every field comes from the run config schema, and only the fields that apply to the choices "
        "above them are shown; a field that is not allowed says why, and nothing is queued until every "
        "run of the launch is valid."
    )
    values, slots = _form()
    choices, repeats, lists_ok = _grid(forms.applicable_fields(values))
    count = launching.grid_size(choices, repeats)
    valid, refusal = (
        _check(values, choices, repeats, slots, limits.max_queued) if lists_ok else ([], "fix the grid's lists")
    )
    group = st.text_input(
        "group", key="launch_group", placeholder="optional for one run; a grid is named 'grid <time>' if empty"
    )
    st.info(f"This launch queues **{count:,}** {_runs(count)} (queue limit {limits.max_queued}).")
    if refusal:
        st.error(md_escape(f"Nothing can be queued: {refusal}."))
    if st.button(f"Queue {count:,} {_runs(count)}", type="primary", key="queue_runs", disabled=bool(refusal)) and valid:
        _queue(valid, group.strip() or (launching.default_group("grid") if count > 1 else None))

with presets:
    st.caption(
        "Each preset queues the runs of one classic experiment as a group; compare them on Compare "
        "(group by the field that differs)."
    )
    for preset in PRESETS.values():
        with st.container(border=True):
            st.subheader(preset.title)
            st.write(preset.reproduces)
            names = [config["name"] for config in preset.configs]
            st.caption("Runs: " + ", ".join(names))
            repeats = PRESET_REPEATS if _with_repeats(preset.name) else 1
            configs = repeated(preset.configs, repeats)
            if st.button(f"Queue {len(configs)} runs", key=f"preset_{preset.name}"):
                _queue(
                    [validate_config(config) for config in configs],
                    launching.default_group(preset.name),
                    preset.view,
                )
