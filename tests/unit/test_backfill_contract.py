"""The medallion's contract: `backfill`/`cancel_backfill`, the `backfill.*`/`quality.*`
events and the new `stream.progress` fields; the decoder and the published schemas agree."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from jsonschema import Draft202012Validator

from contracts.commands import (
    BackfillCommand,
    BackfillPayload,
    CancelBackfillCommand,
    CommandType,
    KafkaSource,
    decode_command,
    new_command,
)
from contracts.errors import ContractError, ErrorCode
from contracts.events import (
    BACKFILL_EVENT_FOR_STATUS,
    EVENT_DATA_MODELS,
    BackfillRecord,
    BatchStatus,
    EventType,
    QualityAlertData,
    StreamLifecycle,
    StreamProgress,
    backfill_subject,
    make_event,
    quality_subject,
)
from contracts.schema_export import render_schemas

RENDERED = render_schemas()


def validator(name: str) -> Draft202012Validator:
    return Draft202012Validator(json.loads(RENDERED[name]),
                                format_checker=Draft202012Validator.FORMAT_CHECKER)


def backfill(payload: dict[str, Any], command_type: str = "backfill") -> bytes:
    return orjson.dumps({"schema_version": 1, "command_id": "c-1", "type": command_type,
                         "issued_at": "2025-01-15T14:35:00Z", "payload": payload})


def rejection(raw: bytes) -> ContractError:
    with pytest.raises(ContractError) as info:
        decode_command(raw)
    return info.value


# ---- commands ---------------------------------------------------------------------------


def test_the_new_command_types() -> None:
    assert CommandType.BACKFILL == "backfill"
    assert CommandType.CANCEL_BACKFILL == "cancel_backfill"
    command = decode_command(backfill({"topic": "transactions-stream"}))
    assert isinstance(command, BackfillCommand)
    assert command.payload.backfill_id is None
    assert (command.payload.start_offset, command.payload.end_offset) == ("earliest", "latest")
    cancel = decode_command(backfill({"backfill_id": "bf-1"}, "cancel_backfill"))
    assert isinstance(cancel, CancelBackfillCommand)
    assert cancel.payload.backfill_id == "bf-1"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("earliest", "earliest"),
        ("latest", "latest"),
        ({"007": 5, "1": -2}, {"7": 5, "1": -2}),
        ({"transactions-stream": {"0": 5}}, {"0": 5}),
        ("2025-01-15T00:00:00+01:00", datetime(2025, 1, 14, 23, tzinfo=UTC)),
        (1736899200000, datetime(2025, 1, 15, tzinfo=UTC)),
        ({"timestamp": 1736899200000}, datetime(2025, 1, 15, tzinfo=UTC)),
    ],
)
def test_offsets_take_the_forms_of_a_batch_kafka_source(given: Any, expected: Any) -> None:
    payload = BackfillPayload.model_validate({"topic": "transactions-stream",
                                              "start_offset": given})
    source = KafkaSource.model_validate({"kind": "kafka", "topic": "transactions-stream",
                                         "start_offset": given})
    assert payload.start_offset == source.start_offset == expected


BAD_SHAPES: list[dict[str, Any]] = [
    {},  # topic is required
    {"topic": "a/b"},
    {"topic": "a,b"},
    {"topic": ".."},
    {"topic": "t", "backfill_id": "-starts-with-a-dash"},
    {"topic": "t", "backfill_id": "x" * 65},
    {"topic": "t", "start_offset": {"0": "1"}},
    {"topic": "t", "start_offset": True},
]
# What only the decoder checks, as for a batch's Kafka source: partition names, order,
# ranges (and timestamp formats, which a JSON Schema validator may not check).
BAD_RANGES: list[dict[str, Any]] = [
    {"topic": "t", "start_offset": "middle"},
    {"topic": "t", "start_offset": {"zero": 1}},
    {"topic": "t", "end_offset": "earliest"},
    {"topic": "t", "start_offset": {"0": 9}, "end_offset": {"0": 3}},
    {"topic": "t", "start_offset": {"0": -3}},
    {"topic": "t", "start_offset": {"other": {"0": 1}}},
    {"topic": "t", "start_offset": "1969-12-31T23:59:59Z"},
    {"topic": "t", "start_offset": "2025-02-01T00:00:00Z", "end_offset": "2025-01-01T00:00:00Z"},
]


@pytest.mark.parametrize("payload", BAD_SHAPES)
def test_bad_backfills_are_rejected_by_decoder_and_schema(payload: dict[str, Any]) -> None:
    raw = backfill(payload)
    assert rejection(raw).code is ErrorCode.INVALID_REQUEST
    assert not validator("commands/backfill.schema.json").is_valid(orjson.loads(raw))


@pytest.mark.parametrize("payload", BAD_RANGES)
def test_bad_ranges_are_rejected_by_the_decoder(payload: dict[str, Any]) -> None:
    assert rejection(backfill(payload)).code is ErrorCode.INVALID_REQUEST
    with pytest.raises(ValueError):
        KafkaSource.model_validate({"kind": "kafka", **payload})


def test_cancel_backfill_needs_a_valid_id() -> None:
    assert rejection(backfill({}, "cancel_backfill")).code is ErrorCode.INVALID_REQUEST
    assert rejection(backfill({"backfill_id": "a b"}, "cancel_backfill")).code is \
        ErrorCode.INVALID_REQUEST


@pytest.mark.parametrize(
    ("ctype", "payload"),
    [
        ("backfill", {"topic": "transactions-stream"}),
        ("backfill", {"backfill_id": "bf_1", "topic": "transactions-batch",
                      "start_offset": {"0": 0, "1": 10}, "end_offset": "latest"}),
        ("backfill", {"topic": "t", "start_offset": "2025-01-15T00:00:00Z",
                      "end_offset": 1736985600000}),
        ("cancel_backfill", {"backfill_id": "bf_1"}),
    ],
)
def test_commands_built_by_new_command_validate(ctype: str, payload: dict[str, Any]) -> None:
    message = orjson.loads(new_command(ctype, payload, issued_by="tests").encode())
    validator(f"commands/{ctype}.schema.json").validate(message)
    validator("commands/command.schema.json").validate(message)


def test_the_new_error_codes() -> None:
    for code in ("BACKFILL_NOT_FOUND", "BACKFILL_ALREADY_EXISTS", "BACKFILL_NOT_CANCELLABLE",
                 "EXPECTATION_FAILED", "INVALID_EXPECTATIONS"):
        assert ErrorCode(code).value == code


# ---- events -----------------------------------------------------------------------------


def test_backfill_events_carry_the_record() -> None:
    assert {BACKFILL_EVENT_FOR_STATUS[s].value for s in BatchStatus} == {
        "backfill.pending", "backfill.running", "backfill.completed", "backfill.failed",
        "backfill.cancelled"}
    assert backfill_subject("bf-1") == "backfill/bf-1"
    record = BackfillRecord(backfill_id="bf-1", status=BatchStatus.PENDING, topic="t",
                            start_offset=datetime(2025, 1, 15, tzinfo=UTC),
                            end_offset={"0": 10}, submitted_at=datetime.now(UTC))
    assert record.start_offset == "2025-01-15T00:00:00Z"  # the command's JSON form
    assert (record.attempts, record.records_read, record.chunks_total) == (0, 0, 0)
    event = make_event(EventType.BACKFILL_PENDING, backfill_subject("bf-1"), "w-1", record)
    message = orjson.loads(event.encode())
    validator("events/backfill.pending.schema.json").validate(message)
    validator("events/event.schema.json").validate(message)
    assert event.typed_data() == record
    with pytest.raises(ValueError):
        BackfillRecord.model_validate({**record.model_dump(), "resolved_offsets": {"0": [1]}})


def test_quality_events() -> None:
    assert quality_subject("silver", "completeness") == "quality/silver/completeness"
    assert EVENT_DATA_MODELS[EventType.QUALITY_ALERT] is QualityAlertData
    assert EVENT_DATA_MODELS[EventType.QUALITY_RECOVERED] is QualityAlertData
    alert = QualityAlertData(layer="silver", expectation="completeness", action="drop",
                             threshold=0.01, window_batches=10, rows_checked=100,
                             rows_failed=5, failure_rate=0.05, micro_batch_id=7,
                             opened_at=datetime.now(UTC))
    event = make_event(EventType.QUALITY_ALERT, quality_subject("silver", "completeness"),
                       "w-1", alert)
    validator("events/quality.alert.schema.json").validate(orjson.loads(event.encode()))
    with pytest.raises(ValueError):
        QualityAlertData.model_validate({**alert.model_dump(), "action": "explode"})


def test_old_progress_and_lifecycle_events_still_decode() -> None:
    old = {"query_id": "q", "batch_id": 3, "rows_in": 10, "rows_written": 9,
           "rows_quarantined": 1, "rows_per_second": 5.0, "batch_duration_ms": 20}
    progress = StreamProgress.model_validate(old)
    assert (progress.rows_bronze, progress.duplicates, progress.rows_dropped,
            progress.total_duplicates, progress.quality, progress.layers) == (0, 0, 0, 0, [], {})
    assert StreamLifecycle.model_validate({"state": "running"}).tables == {}
    new = StreamProgress.model_validate({
        **old, "rows_bronze": 10, "duplicates": 1, "rows_dropped": 0, "total_duplicates": 4,
        "quality": [{"layer": "silver", "expectation": "uniqueness", "action": "warn",
                     "rows_checked": 10, "rows_failed": 1, "metric": None, "passed": False}],
        "layers": {"bronze.transactions": 10, "silver.transactions": 8}})
    assert new.quality[0].expectation == "uniqueness"
    message = orjson.loads(make_event(EventType.STREAM_PROGRESS, "stream/transactions/progress",
                                      "w-1", new).encode())
    validator("events/stream.progress.schema.json").validate(message)
