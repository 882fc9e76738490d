"""The stream's Spark parser agrees with the pydantic contract on what is valid."""

from __future__ import annotations

import orjson
import pytest
from pydantic import ValidationError
from pyspark.sql import SparkSession

from contracts.transaction import TransactionEvent
from producers.generator import INVALID_KINDS, TransactionGenerator
from worker.transaction_parser import REASON, parse_transactions

pytestmark = pytest.mark.spark

NOT_OBJECT = "not a JSON object"


def reasons(spark: SparkSession, values: list[bytes | None]) -> list[str | None]:
    df = spark.createDataFrame([(i, v) for i, v in enumerate(values)], "i INT, value BINARY")
    rows = parse_transactions(df).orderBy("i").select(REASON).collect()
    return [r[REASON] for r in rows]


def pydantic_accepts(raw: bytes) -> bool:
    try:
        TransactionEvent.model_validate_json(raw)
    except (ValidationError, ValueError):
        return False
    return True


def test_generated_records_are_judged_like_the_contract(spark: SparkSession) -> None:
    gen = TransactionGenerator(seed=11)
    valid = [orjson.dumps(gen.event()) for _ in range(60)]
    invalid = [gen.invalid_record(kind) for kind in INVALID_KINDS for _ in range(4)]
    values = valid + [raw for _, raw, _ in invalid]
    got = reasons(spark, values)

    assert got[: len(valid)] == [None] * len(valid)
    for (_, raw, kind), reason in zip(invalid, got[len(valid):], strict=True):
        assert reason, f"{kind} record accepted: {raw[:80]!r}"
        assert not pydantic_accepts(raw), f"pydantic accepts the {kind} record {raw[:80]!r}"
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
