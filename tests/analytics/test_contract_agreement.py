"""The stream's Spark parser, the pydantic model and the published JSON Schema give the same
verdict on every record, and the stream stores the values the model reads.

Spark is slow to start a job, so every test evaluates all its records in one DataFrame:
hypothesis draws a list of records per example, not one record.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from contracts.transaction import TRANSACTION_FIELDS, TransactionEvent
from producers.generator import TransactionGenerator
from tests.contract_cases import (
    EDGE_CASES,
    SAMPLE,
    model_accepts,
    perturbed_records,
    schema_accepts,
    timestamps,
)
from worker.transaction_parser import REASON, parse_transactions

pytestmark = pytest.mark.spark

# A failing example is reported with every disagreement in it; shrinking would rerun Spark
# once per step, so it is skipped.
_SPARK_SETTINGS = settings(
    max_examples=6,
    deadline=None,
    phases=(Phase.explicit, Phase.reuse, Phase.generate),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.large_base_example],
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@cache
def _events() -> tuple[dict[str, Any], ...]:
    gen = TransactionGenerator(seed=17)
    return tuple(gen.event() for _ in range(300))


def generated_event(i: int) -> dict[str, Any]:
    events = _events()
    return events[i % len(events)]


def spark_rows(spark: SparkSession, values: list[bytes | None]) -> list[dict[str, Any]]:
    """`parse_transactions` on the values, in order; timestamps as epoch microseconds."""
    df = spark.createDataFrame(list(enumerate(values)), "i INT, value BINARY")
    parsed = parse_transactions(df).orderBy("i")
    cols = [F.unix_micros(c).alias(c) if c.endswith("_timestamp") else F.col(c)
            for c in TRANSACTION_FIELDS]
    return [r.asDict() for r in parsed.select(REASON, *cols).collect()]


def model_row(raw: bytes) -> dict[str, Any]:
    """What the model reads from a valid record, in the Spark rows' shape."""
    data = TransactionEvent.decode(raw).model_dump(mode="python")
    for key in ("event_timestamp", "processing_timestamp"):
        if data[key] is not None:
            data[key] = (data[key] - _EPOCH) // _MICROSECOND
    if "discount_percent" not in orjson.loads(raw):
        # The model's default; the stream stores what was sent (nothing).
        data["discount_percent"] = None
    return data


_MICROSECOND = datetime(1970, 1, 1, 0, 0, 0, 1, tzinfo=UTC) - _EPOCH


def disagreements(spark: SparkSession, values: list[bytes | None],
                  rows: list[dict[str, Any]] | None = None) -> list[str]:
    """Every record on which the three verdicts differ, or whose stored values differ
    from the model's."""
    problems = []
    for raw, row in zip(values, rows or spark_rows(spark, values), strict=True):
        schema, model, stream = schema_accepts(raw), model_accepts(raw), row[REASON] is None
        if not schema == model == stream:
            problems.append(f"schema={schema} model={model} stream={stream} "
                            f"({row[REASON]}): {raw!r}")
        elif stream and raw is not None:
            stored = {k: v for k, v in row.items() if k != REASON}
            if stored != model_row(raw):
                diff = {k: (v, model_row(raw)[k]) for k, v in stored.items()
                        if v != model_row(raw)[k]}
                problems.append(f"stored values differ from the model's {diff}: {raw!r}")
    return problems


def test_edge_cases(spark: SparkSession) -> None:
    """The hand-written cases (each labelled with the schema's verdict)."""
    values = [c.raw for c in EDGE_CASES]
    rows = spark_rows(spark, values)
    assert disagreements(spark, values, rows) == []
    accepted = [c.name for c, row in zip(EDGE_CASES, rows, strict=True) if row[REASON] is None]
    assert accepted == [c.name for c in EDGE_CASES if c.valid]


@_SPARK_SETTINGS
@given(st.lists(perturbed_records(generated_event), min_size=150, max_size=150))
def test_three_verdicts_agree_on_perturbed_records(spark: SparkSession,
                                                   records: list[bytes]) -> None:
    """Valid records with fields type-confused, out of range, nested, null or missing."""
    assert disagreements(spark, records) == []


@_SPARK_SETTINGS
@given(st.lists(timestamps(), min_size=150, max_size=150))
def test_three_verdicts_agree_on_timestamps(spark: SparkSession, texts: list[str]) -> None:
    records = [orjson.dumps({**SAMPLE, "event_timestamp": text}) for text in texts]
    records += [orjson.dumps({**SAMPLE, "processing_timestamp": text}) for text in texts[:40]]
    assert disagreements(spark, records) == []
