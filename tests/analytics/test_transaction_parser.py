"""The stream's Spark parser: what it makes of generated records and of JSON shapes, and the
reasons it gives. Agreement with the schema and the model on every edge is in
`test_contract_agreement.py`."""

from __future__ import annotations

import orjson
import pytest
from pyspark.sql import SparkSession

from producers.generator import INVALID_KINDS, TransactionGenerator
from tests.contract_cases import SAMPLE, model_accepts, record
from worker.transaction_parser import NOT_AN_OBJECT, REASON, parse_transactions

pytestmark = pytest.mark.spark

NOT_OBJECT = NOT_AN_OBJECT


def reasons(spark: SparkSession, values: list[bytes | None]) -> list[str | None]:
    df = spark.createDataFrame([(i, v) for i, v in enumerate(values)], "i INT, value BINARY")
    rows = parse_transactions(df).orderBy("i").select(REASON).collect()
    return [r[REASON] for r in rows]


def test_generated_records_are_judged_like_the_contract(spark: SparkSession) -> None:
    gen = TransactionGenerator(seed=11)
    valid = [orjson.dumps(gen.event()) for _ in range(60)]
    invalid = [gen.invalid_record(kind) for kind in INVALID_KINDS for _ in range(4)]
    values = valid + [raw for _, raw, _ in invalid]
    got = reasons(spark, values)

    assert got[: len(valid)] == [None] * len(valid)
    for (_, raw, kind), reason in zip(invalid, got[len(valid):], strict=True):
        assert reason, f"{kind} record accepted: {raw[:80]!r}"
        assert not model_accepts(raw), f"pydantic accepts the {kind} record {raw[:80]!r}"
        if kind in ("not_json", "not_object", "truncated"):
            assert reason == NOT_OBJECT, (kind, raw[:80], reason)
        else:
            assert reason != NOT_OBJECT, (kind, raw[:80], reason)


def test_json_shapes(spark: SparkSession) -> None:
    event = orjson.dumps(TransactionGenerator(seed=3).event())
    cases: list[tuple[bytes | None, str | None]] = [
        (event, None),
        (b" \n\t" + event + b"\n", None),            # whitespace around an object is JSON
        (b"{}", "missing required field 'transaction_id'"),
        (b"{ }", "missing required field 'transaction_id'"),
        (b'{"unknown": 1}', "missing required field 'transaction_id'"),
        (b"[" + event + b"]", NOT_OBJECT),
        (b"null", NOT_OBJECT),
        (b"42", NOT_OBJECT),
        (b'"text"', NOT_OBJECT),
        (b"", NOT_OBJECT),
        (None, NOT_OBJECT),
        (b"{not json", NOT_OBJECT),
        (b"{", NOT_OBJECT),
        (event[:-1], NOT_OBJECT),                   # truncated before its closing brace
    ]
    got = reasons(spark, [value for value, _ in cases])
    for (value, want), reason in zip(cases, got, strict=True):
        assert reason == want, (value[:60] if value else value, reason)


def test_reasons_name_the_field_and_the_rule(spark: SparkSession) -> None:
    cases: list[tuple[bytes, str]] = [
        (record(customer_id=42), "'customer_id' must be a JSON string"),
        (record(is_fraudulent="true"), "'is_fraudulent' must be a JSON boolean"),
        (record(total_amount="12,50"), "'total_amount' must be a JSON number"),
        (record(brand={"a": 1}), "'brand' must be a JSON string"),
        (record(quantity=2.5), "'quantity' is not an integer: 2.5"),
        (record(quantity=2147483648), "'quantity' must be <= 2147483647"),
        (record(quantity=0), "'quantity' must be >= 1"),
        (record(event_timestamp="2025-02-29T00:00:00Z"),
         "'event_timestamp' is not an ISO-8601 timestamp"),
        (record(currency="USD\n"), "'currency' must have at most 3 characters"),
        (record(category="weapons"), "'category' has unknown value weapons"),
        (record(city=""), "'city' is empty"),
        (orjson.dumps({**SAMPLE, "region": None}), "missing required field 'region'"),
    ]
    assert reasons(spark, [raw for raw, _ in cases]) == [reason for _, reason in cases]
