"""`pipeline backfill ...`: replay a Kafka range through every layer.

`pipeline backfill --topic T` submits a backfill (no subcommand); `status`, `list` and
`cancel` follow `pipeline batch ...`: the CLI picks the command_id and the backfill id
before sending, re-sends the same command when no answer comes, and `--json` prints one
object on stdout. Exit codes: 0 ok, 1 rejected/failed/cancelled, 2 usage, 3 timed out.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Any

import typer

from contracts.events import BACKFILL_EVENT_FOR_STATUS, BatchStatus, Event

backfill_app = typer.Typer(help="Replay a Kafka range through every layer (bronze, silver, "
                                "quarantine).")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the `pipeline` app."""
    app.add_typer(backfill_app, name="backfill")


# `producers.cli` registers this module at its end: with the app and `register` defined
# above, importing this module first works too.
from producers.cli import (  # noqa: E402
    CommandIdOpt,
    JsonOpt,
    RetriesOpt,
    _delivery,
    _fail,
    _parse_offset,
    _registry,
    _send_and_answer,
    _settings,
)
from producers.client import Sent, WorkerClient  # noqa: E402
from producers.output import (  # noqa: E402
    EXIT_FAILED,
    EXIT_TIMEOUT,
    EXIT_USAGE,
    print_json,
    print_table,
    stderr,
)

BACKFILL_EVENTS = frozenset(BACKFILL_EVENT_FOR_STATUS.values())
TERMINAL = frozenset(s.value for s in BatchStatus if s.terminal)
UNSUCCESSFUL = (BatchStatus.FAILED.value, BatchStatus.CANCELLED.value)
LIST_COLUMNS = ["backfill_id", "status", "topic", "submitted", "read", "bronze", "silver",
                "duplicates", "quarantined", "chunks"]


def new_backfill_id() -> str:
    """Chosen before the first send, so that every re-send names the same backfill."""
    return f"backfill-{datetime.now(UTC):%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}"


def backfill_payload(topic: str, start_offset: str | None, end_offset: str | None,
                     backfill_id: str, as_json: bool) -> dict[str, Any]:
    """The `backfill` payload; offsets parse like `batch run --start-offset/--end-offset`."""
    payload: dict[str, Any] = {"backfill_id": backfill_id, "topic": topic}
    if start_offset is not None:
        payload["start_offset"] = _parse_offset(start_offset, "--start-offset", as_json)
    if end_offset is not None:
        payload["end_offset"] = _parse_offset(end_offset, "--end-offset", as_json)
    return payload


@backfill_app.callback(invoke_without_command=True)
def backfill(
    ctx: typer.Context,
    topic: str | None = typer.Option(None, "--topic", help="The Kafka topic to replay."),
    start_offset: str | None = typer.Option(
        None, help="earliest | latest | per-partition JSON | timestamp (ISO or epoch ms); "
                   "default earliest."),
    end_offset: str | None = typer.Option(None, help="Like --start-offset (default latest)."),
    backfill_id: str | None = typer.Option(
        None, help="Client-chosen backfill id (default: one picked here before sending, "
                   "backfill-YYYYmmdd-HHMMSS-xxxxxx, so that a re-send names the same one)."),
    wait: bool = typer.Option(False, "--wait", help="Follow the backfill to its end."),
    timeout: float = typer.Option(3600.0, help="Seconds to wait with --wait."),
    retries: int = RetriesOpt,
    command_id: str | None = CommandIdOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Submit a backfill of a Kafka range (--topic), or manage backfills (subcommands)."""
    if ctx.invoked_subcommand is not None:
        if topic is not None:
            raise _fail("--topic submits a backfill; it takes no subcommand", as_json,
                        EXIT_USAGE)
        return
    if topic is None:
        raise _fail("give --topic T to submit a backfill, or one of: status ID, list, "
                    "cancel ID (see `pipeline backfill --help`)", as_json, EXIT_USAGE)
    bid = backfill_id or new_backfill_id()
    payload = backfill_payload(topic, start_offset, end_offset, bid, as_json)
    client = WorkerClient(_settings())
    sent, answer = _send_and_answer(client, "backfill", payload, as_json, min(timeout, 30),
                                    retries=retries, command_id=command_id,
                                    reuse=f" --backfill-id {bid}")
    # A replayed answer names the backfill of the original command, which may differ.
    bid = answer.data.get("backfill_id") or bid
    record = _known_backfill(client, answer, bid)
    if not wait:
        if record is None:
            first = client.wait(sent, lambda e: e.type in BACKFILL_EVENTS
                                and e.data.get("backfill_id") == bid, 30)
            record = first.data if first else {"backfill_id": bid, "status": "pending"}
    elif record is None or record.get("status") not in TERMINAL:
        final = _follow_backfill(client, sent, bid, timeout)
        if final is None:
            raise _fail(f"backfill {bid} did not finish within {timeout:g}s", as_json,
                        EXIT_TIMEOUT, backfill_id=bid, command_id=sent.command_id)
        record = final.data
    print_record(record, as_json, _delivery(sent, answer))
    if record.get("status") in UNSUCCESSFUL:
        raise typer.Exit(EXIT_FAILED)


def _known_backfill(client: WorkerClient, answer: Event, backfill_id: str
                    ) -> dict[str, Any] | None:
    """The record from the log when the answer replays an earlier one: its events may all
    be past already, so waiting for new ones could wait forever."""
    if not answer.data.get("duplicate"):
        return None
    record = client.registry().backfills.get(backfill_id)
    return None if record is None else record.model_dump(mode="json")


def progress_line(backfill_id: str, data: dict[str, Any], seconds: float) -> str:
    line = f"backfill {backfill_id}: {data.get('status')}"
    if data.get("chunks_total"):
        line += f", chunk {data.get('chunks_done', 0)}/{data['chunks_total']}"
    if data.get("records_read"):
        line += f", {data['records_read']} records read"
    return f"{line} ({seconds:.0f}s)"


def _follow_backfill(client: WorkerClient, sent: Sent, backfill_id: str, timeout: float
                     ) -> Event | None:
    started = time.monotonic()
    with stderr.status(f"backfill {backfill_id}: pending") as status:
        def show(event: Event) -> None:
            if event.type in BACKFILL_EVENTS and event.data.get("backfill_id") == backfill_id:
                status.update(progress_line(backfill_id, event.data,
                                            time.monotonic() - started))

        return client.wait(
            sent, lambda e: e.type in BACKFILL_EVENTS and e.data.get("status") in TERMINAL
            and e.data.get("backfill_id") == backfill_id, timeout, on_event=show)


def print_record(record: dict[str, Any], as_json: bool,
                 delivery: dict[str, Any] | None = None) -> None:
    """`{ok, ...record}` (`ok` false for a failed or cancelled backfill), or a table."""
    if as_json:
        out = {"ok": record.get("status") not in UNSUCCESSFUL, **record}
        if delivery is not None:
            out["delivery"] = delivery
        print_json(out)
        return
    rows = [{"field": k, "value": v} for k, v in record.items() if v not in (None, {}, [])]
    print_table(rows, ["field", "value"], title=f"backfill {record.get('backfill_id')}")


@backfill_app.command("status")
def backfill_status(backfill_id: str, as_json: bool = JsonOpt) -> None:
    """The backfill record (status, resolved range, counts per layer, error)."""
    record = _registry(as_json).backfills.get(backfill_id)
    if record is None:
        raise _fail(f"no backfill {backfill_id!r}", as_json, code="BACKFILL_NOT_FOUND")
    print_record(record.model_dump(mode="json"), as_json)


@backfill_app.command("list")
def backfill_list(status: BatchStatus | None = typer.Option(None, help="Only this status."),
                  limit: int = typer.Option(50, min=0, help="At most N, newest first."),
                  as_json: bool = JsonOpt) -> None:
    """Backfills known to the event log, newest first."""
    records = sorted(_registry(as_json).backfills.values(), key=lambda r: r.submitted_at,
                     reverse=True)
    if status is not None:
        records = [r for r in records if r.status == status]
    total = len(records)
    records = records[:limit]
    if as_json:
        print_json({"ok": True, "total": total,
                    "backfills": [r.model_dump(mode="json") for r in records]})
        return
    print_table([{"backfill_id": r.backfill_id, "status": r.status.value, "topic": r.topic,
                  "submitted": r.submitted_at, "read": r.records_read,
                  "bronze": r.bronze_new, "silver": r.silver_new,
                  "duplicates": r.duplicates, "quarantined": r.quarantined,
                  "chunks": f"{r.chunks_done}/{r.chunks_total}"} for r in records],
                LIST_COLUMNS, title=f"{total} backfill(s)")


@backfill_app.command("cancel")
def backfill_cancel(backfill_id: str,
                    wait: bool = typer.Option(True, help="Wait for the backfill to end."),
                    timeout: float = typer.Option(120.0, help="Seconds to wait."),
                    retries: int = RetriesOpt, command_id: str | None = CommandIdOpt,
                    as_json: bool = JsonOpt) -> None:
    """Cancel a pending or running backfill."""
    client = WorkerClient(_settings())
    sent, answer = _send_and_answer(client, "cancel_backfill", {"backfill_id": backfill_id},
                                    as_json, min(timeout, 30), retries=retries,
                                    command_id=command_id)
    record = _known_backfill(client, answer, backfill_id)
    if wait and (record is None or record.get("status") not in TERMINAL):
        final = _follow_backfill(client, sent, backfill_id, timeout)
        if final is None:
            raise _fail(f"backfill {backfill_id} did not end within {timeout:g}s", as_json,
                        EXIT_TIMEOUT, backfill_id=backfill_id, command_id=sent.command_id)
        record = final.data
    print_record(record or {"backfill_id": backfill_id, "status": "cancelling"}, as_json,
                 _delivery(sent, answer))
