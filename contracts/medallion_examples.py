"""What the published schemas say about the medallion's messages: the intent of the
`backfill`/`cancel_backfill` commands and of the `backfill.*`/`quality.*` events, and
their examples. Kept apart from `contracts.schema_export`, which builds every message
through the contract with the builders it passes in.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from contracts.commands import CommandType
from contracts.events import (
    BackfillRecord,
    BatchStatus,
    EventType,
    ExpectationResult,
    QualityAlertData,
    backfill_subject,
    quality_subject,
)
from contracts.tables import BRONZE_TRANSACTIONS, STREAM_TABLES

Example = tuple[str, str, dict[str, Any]]  # (name, summary, message)
CommandBuilder = Callable[[CommandType, str, dict[str, Any]], dict[str, Any]]
EventBuilder = Callable[..., dict[str, Any]]

DELTA_ROOT = "/data/delta"
WORKER_ID = "worker-1"

COMMAND_DOCS: dict[CommandType, str] = {
    CommandType.BACKFILL: (
        "Replay a bounded range of a Kafka topic through every layer (bronze, silver, "
        "quarantine); the offsets take the forms of a batch's Kafka source."
    ),
    CommandType.CANCEL_BACKFILL: "Cancel a pending or running backfill.",
}
EVENT_DOCS: dict[EventType, str] = {
    EventType.BACKFILL_PENDING: "A backfill waits for a slot; carries the full backfill record.",
    EventType.BACKFILL_RUNNING: "A backfill is running; carries the full backfill record.",
    EventType.BACKFILL_COMPLETED: (
        "A backfill finished; the record has its resolved range and what each layer got."
    ),
    EventType.BACKFILL_FAILED: "A backfill failed; the record carries the error.",
    EventType.BACKFILL_CANCELLED: "A backfill was cancelled; carries the full backfill record.",
    EventType.QUALITY_ALERT: (
        "An expectation's failure rate over its window of micro-batches went above its "
        "threshold."
    ),
    EventType.QUALITY_RECOVERED: (
        "An open quality alert closed: the failure rate is back at or below the threshold."
    ),
}


def command_examples(command: CommandBuilder) -> dict[CommandType, list[Example]]:
    c = CommandType
    return {
        c.BACKFILL: [
            (
                "backfill_a_day",
                "Replay one day of the stream topic, up to fixed offsets",
                command(
                    c.BACKFILL,
                    "6f1c2b9e-0c1d-4e5f-8a9b-0c1d2e3f4a09",
                    {
                        "backfill_id": "replay-2025-01-15",
                        "topic": "transactions-stream",
                        "start_offset": "2025-01-15T00:00:00Z",
                        "end_offset": {"0": 12000, "1": 11876, "2": 12110},
                    },
                ),
            ),
            (
                "backfill_whole_topic",
                "Replay everything the history topic holds now",
                command(
                    c.BACKFILL,
                    "6f1c2b9e-0c1d-4e5f-8a9b-0c1d2e3f4a0a",
                    {"backfill_id": "history-full", "topic": "transactions-batch"},
                ),
            ),
        ],
        c.CANCEL_BACKFILL: [
            (
                "cancel_backfill",
                "Cancel a running backfill",
                command(
                    c.CANCEL_BACKFILL,
                    "6f1c2b9e-0c1d-4e5f-8a9b-0c1d2e3f4a0b",
                    {"backfill_id": "history-full"},
                ),
            )
        ],
    }


def progress_fields() -> dict[str, Any]:
    """The medallion's part of the `stream.progress` example (250 in, 3 quarantined)."""
    return {
        "rows_bronze": 250,
        "duplicates": 0,
        "rows_dropped": 1,
        "total_duplicates": 12,
        "quality": [
            ExpectationResult(layer="bronze", expectation="volume", action="warn",
                              rows_checked=250, rows_failed=0, metric=250.0, passed=True),
            ExpectationResult(layer="silver", expectation="completeness", action="drop",
                              rows_checked=248, rows_failed=1, metric=0.004032, passed=False),
        ],
        "layers": {"bronze.transactions": 250, "silver.transactions": 247,
                   "quarantine.transactions": 3},
    }


def stream_tables() -> dict[str, str]:
    """The `tables` of the `stream.started` example."""
    return {spec.name: f"{DELTA_ROOT}/{spec.relative}" for spec in STREAM_TABLES}


def _alert(recovered: bool) -> QualityAlertData:
    return QualityAlertData(
        layer="silver",
        expectation="amount_consistency",
        action="warn",
        threshold=0.01,
        window_batches=10,
        rows_checked=2480 if recovered else 2496,
        rows_failed=9 if recovered else 41,
        failure_rate=0.003629 if recovered else 0.016426,
        micro_batch_id=141 if recovered else 131,
        opened_at="2025-01-15T14:36:12.400Z",
        recovered_at="2025-01-15T14:37:02.900Z" if recovered else None,
    )


def event_examples(event: EventBuilder, backfill: dict[str, Any]
                   ) -> dict[EventType, list[Example]]:
    """`backfill` is the first backfill command example: the events it caused."""
    e = EventType
    payload = backfill["payload"]
    record = BackfillRecord(
        backfill_id=payload["backfill_id"],
        status=BatchStatus.RUNNING,
        topic=payload["topic"],
        start_offset=payload["start_offset"],
        end_offset=payload["end_offset"],
        resolved_offsets={"0": [9500, 12000], "1": [9391, 11876], "2": [9620, 12110]},
        command_id=backfill["command_id"],
        submitted_at="2025-01-15T14:40:00.105Z",
        started_at="2025-01-15T14:40:00.230Z",
        attempts=1,
        worker_id=WORKER_ID,
        records_read=5000,
        bronze_new=5000,
        silver_new=4950,
        duplicates=40,
        quarantined=10,
        chunks_done=2,
        chunks_total=3,
        chunk_records=2500,
    )
    completed = BackfillRecord.model_validate({
        **record.model_dump(), "status": BatchStatus.COMPLETED,
        "finished_at": "2025-01-15T14:41:05.610Z", "duration_seconds": 65.38,
        "records_read": 7475, "bronze_new": 7475, "silver_new": 7400, "duplicates": 60,
        "quarantined": 15, "chunks_done": 3})
    subject = backfill_subject(record.backfill_id)
    alert_subject = quality_subject("silver", "amount_consistency")
    return {
        e.BACKFILL_RUNNING: [
            (
                "backfill_running",
                "A backfill two chunks of three in",
                event(e.BACKFILL_RUNNING, subject, "2025-01-15T14:40:41.007Z", record,
                      event_id="0b9d7a61-7f0e-4d42-b1c5-000000000008",
                      command_id=backfill["command_id"]),
            )
        ],
        e.BACKFILL_COMPLETED: [
            (
                "backfill_completed",
                f"A backfill finished: 7475 records read into {BRONZE_TRANSACTIONS.name}, "
                "7400 new in silver",
                event(e.BACKFILL_COMPLETED, subject, "2025-01-15T14:41:05.633Z",
                      completed, event_id="0b9d7a61-7f0e-4d42-b1c5-000000000009",
                      command_id=backfill["command_id"]),
            )
        ],
        e.QUALITY_ALERT: [
            (
                "quality_alert",
                "1.6 % of the rows failed amount_consistency over the last 10 micro-batches",
                event(e.QUALITY_ALERT, alert_subject, "2025-01-15T14:36:12.431Z",
                      _alert(recovered=False),
                      event_id="0b9d7a61-7f0e-4d42-b1c5-00000000000a"),
            )
        ],
        e.QUALITY_RECOVERED: [
            (
                "quality_recovered",
                "The amount_consistency alert closed",
                event(e.QUALITY_RECOVERED, alert_subject, "2025-01-15T14:37:02.921Z",
                      _alert(recovered=True),
                      event_id="0b9d7a61-7f0e-4d42-b1c5-00000000000b"),
            )
        ],
    }
