"""The TransactionEvent contract, the schemas derived from it, and the model agreeing with
the published JSON Schema on what is valid."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from functools import cache
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts.errors import ContractError
from contracts.spark_schema import FIELD_RULES, spark_schema_json
from contracts.transaction import (
    TIMESTAMP_PATTERN,
    TRANSACTION_FIELDS,
    TransactionEvent,
)
from producers.generator import TransactionGenerator
from tests.contract_cases import (
    EDGE_CASES,
    SAMPLE,
    Case,
    model_accepts,
    perturbed_records,
    schema_accepts,
    timestamps,
)


def test_seed_sample_is_valid_and_round_trips() -> None:
    event = TransactionEvent.decode(orjson.dumps(SAMPLE))
    assert orjson.loads(event.encode()) == SAMPLE


def test_thirty_one_fields_in_seed_order() -> None:
    assert list(TRANSACTION_FIELDS) == list(SAMPLE)


@pytest.mark.parametrize(
    "change",
    [
        {"quantity": 0},
        {"quantity": "many"},
        {"category": "weapons"},
        {"discount_percent": 120},
        {"fraud_score": 1.5},
        {"currency": "usd"},
        {"event_timestamp": "not a time"},
        {"is_fraudulent": "yes"},
        {"transaction_id": ""},
    ],
)
def test_impossible_values_are_rejected(change: dict[str, object]) -> None:
    with pytest.raises(ContractError):
        TransactionEvent.decode(orjson.dumps({**SAMPLE, **change}))


@pytest.mark.parametrize("missing", ["transaction_id", "event_timestamp", "customer_id",
                                     "quantity", "total_amount", "region"])
def test_required_fields(missing: str) -> None:
    with pytest.raises(ContractError):
        TransactionEvent.decode(orjson.dumps({k: v for k, v in SAMPLE.items() if k != missing}))


@pytest.mark.parametrize("ts", ["2025-01-15T14:32:07Z", "2025-01-15T14:32:07",
                                "2025-01-15T14:32:07.5+05:30", "2025-01-15T14:32:07.123456Z",
                                "2025-01-15 14:32:07.123456789-03:00"])
def test_iso_timestamps_become_utc(ts: str) -> None:
    event = TransactionEvent.decode(orjson.dumps({**SAMPLE, "event_timestamp": ts}))
    assert event.event_timestamp.utcoffset().total_seconds() == 0


def test_no_coercion_from_json() -> None:
    """Lax pydantic would have turned each of these into a valid value."""
    for change in ({"quantity": "5"}, {"quantity": True}, {"unit_price": "3.5"},
                   {"customer_id": 42}, {"is_fraudulent": "true"}, {"brand": {"a": 1}},
                   {"event_timestamp": 1736951527}, {"category": "BOOKS"}):
        assert not model_accepts(orjson.dumps({**SAMPLE, **change})), change


def test_integral_numbers_are_integers() -> None:
    for quantity in (5.0, 1e2):
        event = TransactionEvent.decode(orjson.dumps({**SAMPLE, "quantity": quantity}))
        assert event.quantity == int(quantity) and isinstance(event.quantity, int)


def test_python_values_still_build_events() -> None:
    """Producers and Delta readers build events from Python values, datetimes included."""
    row = {**SAMPLE, "event_timestamp": datetime(2025, 1, 15, 14, 32, 7, tzinfo=UTC),
           "processing_timestamp": datetime(2025, 1, 15, 14, 33)}
    event = TransactionEvent.model_validate(row)
    assert event.processing_timestamp == datetime(2025, 1, 15, 14, 33, tzinfo=UTC)
    TransactionEvent.model_validate(TransactionGenerator(seed=1).event())


def test_timestamp_pattern_has_a_true_end() -> None:
    """`$` would match before a final newline in Python and Java; the pattern must not."""
    assert re.search(TIMESTAMP_PATTERN, "2025-01-15T14:32:07Z")
    assert not re.search(TIMESTAMP_PATTERN, "2025-01-15T14:32:07Z\n")
    assert not re.search(TIMESTAMP_PATTERN, "2025-01-15T14:32:07\n")
    assert "\\d" not in TIMESTAMP_PATTERN  # Python's \d matches non-ASCII digits


def test_spark_schema_is_derived_from_the_model() -> None:
    schema = spark_schema_json()
    names = [f["name"] for f in schema["fields"]]
    assert names == list(TRANSACTION_FIELDS)
    types = {f["name"]: f["type"] for f in schema["fields"]}
    assert types["quantity"] == "integer"
    assert types["event_timestamp"] == "timestamp"
    assert types["is_fraudulent"] == "boolean"
    assert types["unit_price"] == "double"
    rules = {r.name: r for r in FIELD_RULES}
    assert rules["quantity"].ge == 1
    assert rules["quantity"].le == 2_147_483_647
    assert rules["category"].allowed is not None and "electronics" in rules["category"].allowed
    assert rules["discount_percent"].le == 100
    assert rules["event_timestamp"].pattern == TIMESTAMP_PATTERN
    assert (rules["currency"].min_length, rules["currency"].max_length) == (3, 3)
    assert [r.name for r in FIELD_RULES if r.required] == [
        "transaction_id", "event_timestamp", "customer_id", "product_id", "product_name",
        "category", "quantity", "unit_price", "total_amount", "currency", "payment_method",
        "transaction_status", "channel", "region", "city"]


# ---- the model agrees with the published schema -------------------------------------------


@pytest.mark.parametrize("case", EDGE_CASES, ids=lambda c: c.name)
def test_edge_case_verdicts(case: Case) -> None:
    """Each hand-written case is labelled with the schema's verdict, and the model agrees."""
    assert schema_accepts(case.raw) is case.valid
    assert schema_accepts(case.raw, with_formats=True) is case.valid
    assert model_accepts(case.raw) is case.valid


@cache
def _events() -> tuple[dict[str, Any], ...]:
    gen = TransactionGenerator(seed=5)
    return tuple(gen.event() for _ in range(200))


def generated_event(i: int) -> dict[str, Any]:
    events = _events()
    return events[i % len(events)]


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(perturbed_records(generated_event))
def test_model_agrees_with_the_schema(raw: bytes) -> None:
    verdict = schema_accepts(raw)
    assert schema_accepts(raw, with_formats=True) is verdict
    assert model_accepts(raw) is verdict, raw


@settings(max_examples=600, deadline=None)
@given(timestamps(), st.sampled_from(["event_timestamp", "processing_timestamp"]))
def test_model_agrees_with_the_schema_on_timestamps(text: str, field: str) -> None:
    raw = orjson.dumps({**SAMPLE, field: text})
    assert model_accepts(raw) is schema_accepts(raw), text
