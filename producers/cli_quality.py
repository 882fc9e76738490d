"""`pipeline quality alerts|status`: data-quality expectations.

`alerts` folds the event log (open `quality.alert`s); `status` reads the Delta table
`quality.metrics` straight with delta-rs: no worker, no Spark, no JVM.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import typer

from contracts.tables import QUALITY_METRICS
from contracts.timeutil import as_utc

quality_app = typer.Typer(help="Data-quality expectations: open alerts, latest results.",
                          no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the `pipeline` app."""
    app.add_typer(quality_app, name="quality")


# `producers.cli` registers this module at its end: with the app and `register` defined
# above, importing this module first works too.
from producers.cli import (  # noqa: E402
    JsonOpt,
    _exit_skipping_native_teardown,
    _fail,
    _registry,
    _settings,
)
from producers.output import print_json, print_table, stderr  # noqa: E402

# The columns of `quality.metrics` that `status` reads (the table may have more).
METRIC_COLUMNS = ("layer", "expectation", "action", "rows_checked", "rows_failed", "metric",
                  "passed", "micro_batch_id", "checked_at", "run")
STREAM_RUN = "stream"
ALERT_COLUMNS = ["layer", "expectation", "action", "failure_rate", "threshold",
                 "window_batches", "micro_batch_id", "opened_at"]


@quality_app.command("alerts")
def quality_alerts(as_json: bool = JsonOpt) -> None:
    """Open quality alerts, from the event log."""
    alerts = sorted(_registry(as_json).quality_alerts.values(),
                    key=lambda a: (a.opened_at, a.layer, a.expectation))
    if as_json:
        print_json({"ok": True, "alerts": [a.model_dump(mode="json") for a in alerts]})
        return
    if not alerts:
        stderr.print("no open quality alerts")
        return
    print_table([a.model_dump() for a in alerts], ALERT_COLUMNS,
                title=f"{len(alerts)} open quality alert(s)")


def latest_results(path: Path | str) -> list[dict[str, Any]] | None:
    """The latest row of every (layer, expectation) in `quality.metrics` at `path`: the
    newest `checked_at` among the stream's rows, or among any run's when the stream has
    none. Sorted by layer and expectation; None when there is no table at `path`.

    Reads only `METRIC_COLUMNS`, one record batch at a time, keeping one row per
    expectation in between, so the memory used does not grow with the table."""
    import pyarrow as pa
    from deltalake import DeltaTable

    if not DeltaTable.is_deltatable(str(path)):
        return None
    dataset = DeltaTable(str(path)).to_pyarrow_dataset()
    missing = [c for c in METRIC_COLUMNS if c not in dataset.schema.names]
    if missing:
        raise ValueError(f"{path} has no column(s) {', '.join(missing)}")
    best: pa.Table | None = None
    # An explicit reader, closed when done: abandoned scan threads can crash the exit.
    reader = dataset.scanner(columns=list(METRIC_COLUMNS)).to_reader()
    try:
        for batch in reader:
            if batch.num_rows:
                rows = pa.Table.from_batches([batch])
                best = _latest(rows if best is None else pa.concat_tables([best, rows]))
    finally:
        reader.close()
    if best is None:
        return []
    out = best.sort_by([("layer", "ascending"), ("expectation", "ascending")]).to_pylist()
    for row in out:
        if isinstance(row["checked_at"], datetime):
            row["checked_at"] = as_utc(row["checked_at"])
    return out


def _latest(table: Any) -> Any:
    """One row per (layer, expectation): a stream row before any other run's, then the
    newest `checked_at`, then the highest `micro_batch_id` (a null is never chosen over a
    value). A hash aggregate narrows each group to its newest rows first, so only those
    few are sorted."""
    import pyarrow as pa
    import pyarrow.compute as pc

    # checked_at in microseconds (years 1900-2199 fit in +-2^53), a non-stream row 2^62
    # lower, so that one max picks the stream's newest row when there is one.
    at = pc.fill_null(table["checked_at"].cast(pa.int64()), -(2**61))
    from_stream = pc.fill_null(pc.equal(table["run"], STREAM_RUN), False)
    table = table.append_column("_key", pc.if_else(from_stream, at, pc.subtract(at, 2**62)))
    newest = table.group_by(["layer", "expectation"]).aggregate([("_key", "max")])
    newest = newest.rename_columns([n.removesuffix("_max") for n in newest.column_names])
    rows = table.join(newest, keys=["layer", "expectation", "_key"], join_type="inner")
    batch = pc.fill_null(rows["micro_batch_id"].cast(pa.int64()), -(2**63))
    rows = rows.append_column("_batch", batch).sort_by([("_batch", "ascending")])
    values = [c for c in METRIC_COLUMNS if c not in ("layer", "expectation")]
    last = pc.ScalarAggregateOptions(skip_nulls=False)  # a null metric is the metric
    grouped = rows.group_by(["layer", "expectation"], use_threads=False).aggregate(
        [(c, "last", last) for c in values])
    grouped = grouped.rename_columns([n.removesuffix("_last") for n in grouped.column_names])
    return grouped.select(list(METRIC_COLUMNS))


@quality_app.command("status")
def quality_status(as_json: bool = JsonOpt) -> None:
    """The latest result of every expectation, read from the Delta table quality.metrics."""
    path = QUALITY_METRICS.path(_settings().delta_dir)
    try:
        results = latest_results(path)
    except Exception as exc:  # delta-rs / pyarrow: an unreadable table
        raise _fail(f"cannot read {QUALITY_METRICS.name} at {path}: {exc}", as_json) from None
    if results is None:
        stderr.print(f"no {QUALITY_METRICS.name} table at {path} yet: no micro-batch has "
                     "been checked", soft_wrap=True)
        results = []
    if as_json:
        print_json({"ok": True, "expectations": results})
    elif results:
        print_table(results, list(METRIC_COLUMNS),
                    title=f"{len(results)} expectation(s), latest result")
    _exit_after_read()


def _exit_after_read() -> None:
    """Exit without interpreter teardown once a table was read (see the note on
    `_exit_skipping_native_teardown`); tests replace it."""
    _exit_skipping_native_teardown(0)
