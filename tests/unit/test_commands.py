"""Decoding commands: every byte string becomes a valid command or one ContractError."""

from __future__ import annotations

import contextlib

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts.commands import (
    RunBatchCommand,
    decode_command,
    new_command,
)
from contracts.errors import ContractError, ErrorCode


def envelope(**overrides: object) -> dict[str, object]:
    base: dict[str, object] = {
        "schema_version": 1,
        "command_id": "cmd-1",
        "type": "ping",
        "issued_at": "2025-01-15T14:32:07Z",
        "payload": {},
    }
    base.update(overrides)
    return base


def run_batch(payload: dict[str, object]) -> bytes:
    return orjson.dumps(envelope(type="run_batch", payload=payload))


def code_of(raw: bytes) -> ErrorCode:
    with pytest.raises(ContractError) as info:
        decode_command(raw)
    return info.value.code


def test_valid_ping_round_trips() -> None:
    command = new_command("ping")
    assert decode_command(command.encode()) == command


def test_unknown_fields_are_ignored() -> None:
    command = decode_command(orjson.dumps(envelope(extra_field=1)))
    assert command.type == "ping"


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"\x00\xff garbage", ErrorCode.INVALID_REQUEST),
        (b"[1, 2]", ErrorCode.INVALID_REQUEST),
        (b'"ping"', ErrorCode.INVALID_REQUEST),
        (orjson.dumps(envelope(schema_version=2)), ErrorCode.UNSUPPORTED_SCHEMA_VERSION),
        (orjson.dumps(envelope(schema_version="1")), ErrorCode.INVALID_REQUEST),
        (
            orjson.dumps({k: v for k, v in envelope().items() if k != "schema_version"}),
            ErrorCode.INVALID_REQUEST,
        ),
        (orjson.dumps(envelope(type="reboot")), ErrorCode.UNKNOWN_COMMAND),
        (orjson.dumps(envelope(type=7)), ErrorCode.INVALID_REQUEST),
        (orjson.dumps(envelope(command_id="x" * 129)), ErrorCode.INVALID_REQUEST),
        (orjson.dumps(envelope(command_id="")), ErrorCode.INVALID_REQUEST),
        (orjson.dumps(envelope(issued_at="yesterday")), ErrorCode.INVALID_REQUEST),
        (orjson.dumps(envelope(payload=[])), ErrorCode.INVALID_REQUEST),
    ],
)
def test_bad_envelopes_get_precise_codes(raw: bytes, code: ErrorCode) -> None:
    assert code_of(raw) is code


def test_command_id_is_recovered_from_broken_json() -> None:
    with pytest.raises(ContractError) as info:
        decode_command(b'{"command_id": "abc-123", "type": "ping", oops')
    assert info.value.command_id == "abc-123"


def test_oversized_message_is_rejected() -> None:
    raw = orjson.dumps(envelope(payload={"pad": "x" * 100_000}))
    with pytest.raises(ContractError) as info:
        decode_command(raw, max_bytes=65_536)
    assert info.value.code is ErrorCode.INVALID_REQUEST
    assert info.value.command_id == "cmd-1"
    assert "limit" in info.value.message


DELTA = {"kind": "delta", "start_date": "2025-01-01", "end_date": "2025-01-31"}


def test_run_batch_with_delta_source_and_filters() -> None:
    command = decode_command(
        run_batch(
            {
                "analysis_type": "revenue_by_category",
                "source": DELTA,
                "filters": {"region": ["west", "north"], "channel": "web"},
                "batch_id": "b-1",
            }
        )
    )
    assert isinstance(command, RunBatchCommand)
    assert command.payload.batch_id == "b-1"
    assert command.payload.filters == {"region": ["west", "north"], "channel": "web"}


@pytest.mark.parametrize(
    "payload",
    [
        {"analysis_type": "nope", "source": DELTA},
        {"analysis_type": "full_report", "source": {**DELTA, "end_date": "2024-12-01"}},
        {"analysis_type": "full_report", "source": {**DELTA, "start_date": "2025-13-01"}},
        {"analysis_type": "full_report", "source": DELTA, "filters": {"password": "x"}},
        {"analysis_type": "full_report", "source": DELTA, "filters": {"region": "mars"}},
        {"analysis_type": "full_report", "source": DELTA, "filters": {"region": []}},
        {"analysis_type": "full_report", "source": DELTA, "batch_id": "-bad"},
        {"analysis_type": "full_report", "source": DELTA, "batch_id": "a" * 65},
        {"analysis_type": "full_report", "source": DELTA, "batch_id": "has space"},
        {"analysis_type": "full_report", "source": {"kind": "s3"}},
        {
            "analysis_type": "full_report",
            "source": {
                "kind": "kafka",
                "topic": "t",
                "start_offset": {"0": 10},
                "end_offset": {"0": 5},
            },
        },
        {
            "analysis_type": "full_report",
            "source": {"kind": "kafka", "topic": "t", "start_offset": {"zero": 1}},
        },
        {
            "analysis_type": "full_report",
            "source": {"kind": "kafka", "topic": "t", "start_offset": "middle"},
        },
        {
            "analysis_type": "full_report",
            "source": {
                "kind": "kafka",
                "topic": "t",
                "start_offset": "latest",
                "end_offset": "earliest",
            },
        },
        {
            "analysis_type": "full_report",
            "source": {
                "kind": "kafka",
                "topic": "t",
                "start_offset": "2025-02-01T00:00:00Z",
                "end_offset": "2025-01-01T00:00:00Z",
            },
        },
    ],
)
def test_invalid_batches_are_rejected_up_front(payload: dict[str, object]) -> None:
    assert code_of(run_batch(payload)) is ErrorCode.INVALID_REQUEST


def test_kafka_offsets_accept_spark_and_timestamp_forms() -> None:
    command = decode_command(
        run_batch(
            {
                "analysis_type": "fraud_analysis",
                "source": {
                    "kind": "kafka",
                    "topic": "t",
                    "start_offset": {"t": {"0": 3, "1": -2}},
                    "end_offset": 1736950000000,
                },
            }
        )
    )
    source = command.payload.source
    assert source.start_offset == {"0": 3, "1": -2}
    assert source.end_offset.year == 2025


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_any_bytes_decode_or_raise_contract_error(raw: bytes) -> None:
    try:
        decode_command(raw)
    except ContractError as exc:
        assert exc.code in set(ErrorCode)


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.dictionaries(
        st.sampled_from(["schema_version", "command_id", "type", "issued_at", "payload"]),
        st.one_of(
            st.none(),
            st.integers(-(2**63), 2**63 - 1),
            st.text(max_size=20),
            st.lists(st.integers(-(2**63), 2**63 - 1), max_size=2),
            st.dictionaries(st.text(max_size=5), st.integers(-(2**63), 2**63 - 1), max_size=2),
        ),
    )
)
def test_any_json_object_decodes_or_raises_contract_error(obj: dict[str, object]) -> None:
    with contextlib.suppress(ContractError):
        decode_command(orjson.dumps(obj))
