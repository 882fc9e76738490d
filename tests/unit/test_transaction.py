"""The TransactionEvent contract and the schemas derived from it."""

from __future__ import annotations

import orjson
import pytest

from contracts.errors import ContractError
from contracts.spark_schema import FIELD_RULES, spark_schema_json
from contracts.transaction import TRANSACTION_FIELDS, TransactionEvent

SAMPLE = {
    "transaction_id": "a3f8e2b1-7c44-4d12-9e56-1a2b3c4d5e6f",
    "event_timestamp": "2025-01-15T14:32:07.123Z",
    "processing_timestamp": None,
    "customer_id": "CUST-00042871",
    "customer_tier": "gold",
    "product_id": "SKU-ELC-00912",
    "product_name": "Sony WH-1000XM5 Headphones",
    "category": "electronics",
    "sub_category": "audio_headphones",
    "brand": "Sony",
    "quantity": 2,
    "unit_price": 349.99,
    "discount_percent": 15.0,
    "total_amount": 594.98,
    "tax_amount": 53.55,
    "currency": "USD",
    "payment_method": "credit_card",
    "card_network": "visa",
    "transaction_status": "completed",
    "channel": "mobile_app",
    "store_id": None,
    "region": "west",
    "city": "Mumbai",
    "state": "MH",
    "postal_code": "400001",
    "device_type": "android",
    "session_id": "sess-8a7b6c5d4e3f",
    "ip_address": "192.168.xxx.xxx",
    "is_fraudulent": False,
    "fraud_score": 0.03,
    "batch_id": None,
}


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
                                "2025-01-15T14:32:07.5+05:30", "2025-01-15T14:32:07.123456Z"])
def test_iso_timestamps_become_utc(ts: str) -> None:
    event = TransactionEvent.decode(orjson.dumps({**SAMPLE, "event_timestamp": ts}))
    assert event.event_timestamp.utcoffset().total_seconds() == 0


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
    assert rules["category"].allowed is not None and "electronics" in rules["category"].allowed
    assert rules["discount_percent"].le == 100
