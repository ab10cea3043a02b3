"""Run training from the command line, without the dashboard.

    python -m rnncore.run --task mnist --cell lstm --mode static --max-steps 500
    python -m rnncore.run --preset e1-static-vs-dynamic
    python -m rnncore.run --cell sru --epochs 1 --db sqlite:///unroll.db   # stored like a queued run
    python -m rnncore.run --preset e3-lstm-vs-sru --db sqlite:///unroll.db --tag baseline --note "before the fix"

Every run config field is an option (hidden_units is --hidden-units); bad values get the
same messages as the dashboard. A progress line shows the live loss and accuracy, and
the summary is printed at the end. With --db the runs are queued in that database
(as one group for a preset) and executed here, so the dashboard shows them like any other;
--tag and --note are stored with each of them.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import typing
from typing import Any

from db.engine import DatabaseUnavailable, connect_or_explain, masked_url, report_database_error
from db.presets import PRESETS, repeated
from db.queue import annotation_values
from db.run_config import ConfigError, RunConfig, field_type, validate_config
from db.summary import RunSummary, StoredSummary

# The RunSummary fields the text output lists, in order; --json prints every stored key but NOT_PRINTED.
NOT_PRINTED = ("schema_version", "series")
SUMMARY_KEYS = (
    "steps",
    "train_seconds",
    "trace_seconds",
    "median_step_ms",
    "target_step",
    "target_seconds",
    "test_accuracy",
    "test_mse",
    "parameters",
    "peak_memory_mb",
    "data_source",
    "stopped_by",
)


def _option_type(name: str) -> tuple[Any, tuple]:
    """(argparse type, choices) for a config field (an optional field takes its inner type)."""
    annotation, _optional = field_type(name)
    if typing.get_origin(annotation) is typing.Literal:
        return str, typing.get_args(annotation)
    return annotation, ()


MAX_REPEATS = 10


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m rnncore.run",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        epilog="Exit status: 0 when every run succeeded, 1 when one did not, 2 when "
        "options are refused or the --db database cannot be opened (one line "
        "says why; --verbose adds the traceback).",
    )
    parser.add_argument("--preset", choices=sorted(PRESETS), help="run every config of a preset")
    parser.add_argument(
        "--repeats",
        type=int,
        default=1,
        metavar="N",
        help=f"with --preset: every config with seeds 1..N (1 to {MAX_REPEATS}), so Compare can put an interval "
        "on the preset's ratio",
    )
    parser.add_argument("--db", metavar="URL", help="store the runs in this database (queued, then run here)")
    parser.add_argument("--json", action="store_true", help="print each summary as JSON")
    parser.add_argument("--verbose", action="store_true", help="show the traceback of a database error as well")
    parser.add_argument(
        "--tag",
        action="append",
        default=[],
        metavar="TAG",
        help="tag the stored runs (repeatable, or comma separated; needs --db)",
    )
    parser.add_argument("--note", metavar="TEXT", help="a note stored with the runs (needs --db)")
    fields = parser.add_argument_group("run config (see db/run_config.py)")
    for name, info in RunConfig.model_fields.items():
        flag = "--" + name.replace("_", "-")
        kind, choices = _option_type(name)
        if kind is bool:
            fields.add_argument(
                flag, dest=name, action=argparse.BooleanOptionalAction, default=None, help=info.description
            )
        else:
            fields.add_argument(
                flag,
                dest=name,
                type=kind,
                choices=choices or None,
                default=None,
                metavar=None if choices else kind.__name__.upper(),
                help=info.description,
            )
    return parser


def configs_from_args(args: argparse.Namespace) -> list[RunConfig]:
    """The validated configs the options describe: a preset's (options override its fields) or one."""
    given = {name: value for name, value in vars(args).items() if name in RunConfig.model_fields and value is not None}
    if args.preset:
        configs = repeated(PRESETS[args.preset].configs, args.repeats)
        return [validate_config({**config, **given}) for config in configs]
    defaults = RunConfig.model_fields
    given.setdefault(
        "name", f"{given.get('cell', defaults['cell'].default)}-{given.get('mode', defaults['mode'].default)}"
    )
    return [validate_config(given)]


def annotations_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The --tag and --note values as db.queue.annotate takes them, checked before anything trains
    (ConfigError names the field); empty when neither is given."""
    if not args.tag and args.note is None:
        return {}
    tags = [tag for given in args.tag for tag in given.split(",")]
    values = annotation_values(tags=tags if args.tag else None, notes=args.note)
    return {"tags": values["tags"].split() if "tags" in values else None, "notes": values.get("notes")}


class ProgressLine:
    """One line, rewritten in place, with the step, the clock and the latest figures."""

    def __init__(self, config: RunConfig, stream=sys.stderr):
        self.total = config.max_steps
        self.stream = stream
        self.last_draw = 0.0

    def __call__(self, step: int, seconds: float, values: dict[str, float]) -> None:
        now = time.monotonic()
        if now - self.last_draw < 0.2 and step != self.total:
            return
        self.last_draw = now
        figures = "  ".join(f"{name} {value:.4f}" for name, value in values.items())
        if self.total:
            filled = int(20 * step / self.total)
            bar = f"[{'#' * filled}{'.' * (20 - filled)}] {step}/{self.total}"
        else:
            bar = f"step {step}"
        self.stream.write(f"\r{bar}  {seconds:7.2f} s  {figures}\x1b[K")
        self.stream.flush()

    def close(self) -> None:
        self.stream.write("\n")


def print_summary(config: RunConfig, outcome: str, summary: StoredSummary | None, as_json: bool) -> None:
    figures = RunSummary.from_stored(summary)
    if as_json:
        shown = {key: value for key, value in figures.to_stored().items() if key not in NOT_PRINTED}
        print(json.dumps({"name": config.name, "outcome": outcome, **shown}))
        return
    print(f"{config.name}: {outcome}")
    for key in SUMMARY_KEYS:
        value = getattr(figures, key)
        if value is not None:
            print(f"  {key:<16} {value:.4g}" if isinstance(value, float) else f"  {key:<16} {value}")


def run_here(config: RunConfig, as_json: bool) -> str:
    """Train in this process without storing anything."""
    from rnncore import train

    progress = ProgressLine(config)
    try:
        summary, outcome = train.train(config, progress), "succeeded"
    except train.Diverged as diverged:
        summary, outcome = diverged.summary, str(diverged)
    finally:
        progress.close()
    print_summary(config, outcome, summary, as_json)
    return outcome


def run_stored(
    configs: list[RunConfig], url: str, group: str | None, as_json: bool, annotations: dict[str, Any] | None = None
) -> list[str]:
    """Queue the runs in the database (tagged and noted as asked), then execute each here as a
    registered worker."""
    from db import queue
    from rnncore.worker import Worker

    worker = Worker(url)
    worker.install_signal_handlers()
    worker.register()
    outcomes = []
    try:
        for config in configs:
            # Queued and claimed in one transaction: no other worker can take it in between.
            with worker.factory.begin() as session:
                run_id = queue.enqueue(session, config, group=group)
                queue.annotate(session, run_id, **(annotations or {}))
                run = queue.claim(session, run_id, worker.id)
            progress = ProgressLine(config)
            worker.on_step = progress
            outcome = worker.execute(run)
            progress.close()
            with worker.factory() as session:
                stored = queue.get_run(session, run_id)
            print(f"run {run_id} stored in {masked_url(url)}", file=sys.stderr)
            print_summary(config, outcome, stored.summary, as_json)
            if stored.error:
                print(f"  error            {stored.error.splitlines()[0]}")
            outcomes.append(outcome)
            if worker.shutdown.is_set():
                break
    finally:
        worker.deregister()
    return outcomes


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not 1 <= args.repeats <= MAX_REPEATS or (args.repeats > 1 and not args.preset):
        parser.error(f"--repeats takes 1 to {MAX_REPEATS}, with --preset (got {args.repeats})")
    try:
        configs = configs_from_args(args)
        annotations = annotations_from_args(args)
    except ConfigError as refused:
        for field, message in refused.errors:
            print(f"{field}: {message}", file=sys.stderr)
        return 2
    if annotations and not args.db:
        parser.error("--tag and --note are stored with the runs: add --db URL (without it nothing is stored)")
    if args.db:
        try:  # open (and migrate) it before any training: a bad URL is one line, not a traceback
            connect_or_explain(args.db).dispose()
        except DatabaseUnavailable as error:
            return report_database_error(error, parser.prog, args.verbose)
        outcomes = run_stored(configs, args.db, args.preset, args.json, annotations)
    else:
        outcomes = [run_here(config, args.json) for config in configs]
    return 0 if all(outcome == "succeeded" for outcome in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
