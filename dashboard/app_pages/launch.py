"""Launch one run: a form generated from the run config schema."""

import streamlit as st

from dashboard.forms import FieldSpec, field_specs, parse_form
from dashboard.state import sessions
from db import queue

FORM_DEFAULTS = {"name": "lstm-static", "max_steps": 300, "target_accuracy": 0.9}


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


st.title("Launch a run")
st.caption("Every field comes from the run config schema; a field that is not allowed says why, "
           "and nothing is queued until all are.")

specs = field_specs()
with st.form("launch"):
    columns = st.columns(3)
    values, error_slots = {}, {}
    for index, spec in enumerate(specs):
        with columns[index % 3]:
            values[spec.name] = _widget(spec)
            error_slots[spec.name] = st.empty()
    group = st.text_input("group (optional)", key="launch_group")
    submitted = st.form_submit_button("Queue run", type="primary")

if submitted:
    config, errors = parse_form(values)
    if errors:
        for field, message in errors.items():
            slot = error_slots.get(field)
            (slot.error if slot else st.error)(f"{field}: {message}")
        st.error("Nothing was queued: fix the fields marked above.")
    else:
        with sessions().begin() as session:
            run_id = queue.enqueue(session, config, group=group.strip() or None)
        st.success(f"Queued run {run_id} ({config.name}). Follow it on the Runs page.")
