"""The medallion write against real Spark and real Delta tables: bronze keeps every record
byte for byte, silver each transaction once, quarantine the rest with reasons, and every
default expectation counts what an independent computation says.

The input is what Spark's Kafka source hands a micro-batch (key, value, topic, partition,
offset, timestamp, headers), built here so that each case controls its offsets.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from contracts.settings import Settings
from tests.contract_cases import SAMPLE
from worker.medallion import Medallion, WriteRun
from worker.quality.checks import ExpectationFailed, QualityChecks
from worker.quality.expectations import load_expectations, parse_expectations

pytestmark = pytest.mark.spark

KAFKA_ROW = ("key BINARY, value BINARY, topic STRING, partition INT, offset LONG, "
             "timestamp TIMESTAMP, timestampType INT, "
             "headers ARRAY<STRUCT<key: STRING, value: BINARY>>")
NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture(scope="module")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from worker.spark_session import build_session

    settings = Settings(data_dir=tmp_path_factory.mktemp("spark"), spark_master="local[2]",
                        spark_driver_memory="1g")
    session = build_session(settings, app_name="medallion-tests")
    try:
        yield session
    finally:
        session.stop()


def _iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def record(**changes: Any) -> dict[str, Any]:
    out = dict(SAMPLE)
    out["transaction_id"] = str(uuid.uuid4())
    # Now, not at import: the freshness expectation measures against the ingest time.
    out["event_timestamp"] = _iso(datetime.now(UTC))
    out.update(changes)
    return out


def kafka_rows(spark: Any, values: list[bytes], *, topic: str = "tx", partition: int = 0,
               first_offset: int = 0, offsets: list[int] | None = None) -> Any:
    rows = []
    for i, value in enumerate(values):
        offset = offsets[i] if offsets else first_offset + i
        rows.append((f"k{offset}".encode(), value, topic, partition, offset,
                     NOW + timedelta(milliseconds=offset), 0,
                     [("h", f"v{offset}".encode())]))
    return spark.createDataFrame(rows, KAFKA_ROW)


def medallion(spark: Any, tmp_path: Path, expectations: Any = None) -> Medallion:
    settings = Settings(data_dir=tmp_path, spark_master="local[2]")
    return Medallion(spark, settings, QualityChecks(expectations or load_expectations()))


def table(spark: Any, path: Path) -> Any:
    return spark.read.format("delta").load(str(path)).toPandas()


def outcome(counts: Any, name: str) -> Any:
    return next(o for o in counts.outcomes if o.expectation.name == name)


def test_layers_keep_every_record_once_and_silver_each_transaction_once(
        spark: Any, tmp_path: Path) -> None:
    m = medallion(spark, tmp_path)
    a, b, c = record(), record(), record(total_amount=1.0)  # c is inconsistent: warn only
    invalid = [b"{not json", orjson.dumps(record(quantity=0)),
               orjson.dumps({k: v for k, v in record().items() if k != "customer_id"})]
    first = [orjson.dumps(a), orjson.dumps(b), orjson.dumps(a), *invalid]  # a twice
    counts = m.write(kafka_rows(spark, first), WriteRun("app", 0, "stream"), None)
    assert counts is not None
    assert (counts.records, counts.bronze_new, counts.valid) == (6, 6, 3)
    assert (counts.silver_new, counts.duplicates, counts.quarantined) == (2, 1, 3)

    # Next micro-batch: a copy of b on another partition, c new.
    second = kafka_rows(spark, [orjson.dumps(b), orjson.dumps(c)], partition=1)
    counts = m.write(second, WriteRun("app", 1, "stream"), None)
    assert counts is not None
    assert (counts.silver_new, counts.duplicates) == (1, 1)
    assert outcome(counts, "uniqueness").rows_failed == 1
    assert outcome(counts, "amount_consistency").rows_failed == 1

    bronze = table(spark, m.paths.bronze)
    assert len(bronze) == 8
    assert sorted(bytes(v) for v in bronze["value"]) == sorted(
        [*first, orjson.dumps(b), orjson.dumps(c)])
    assert set(bronze.columns) >= {"key", "value", "headers", "topic", "partition", "offset",
                                   "kafka_timestamp", "ingested_at"}
    silver = table(spark, m.paths.silver)
    assert sorted(silver["transaction_id"]) == sorted([a["transaction_id"],
                                                       b["transaction_id"],
                                                       c["transaction_id"]])
    # The first received copy of a: offset 0, not 2.
    assert int(silver.loc[silver.transaction_id == a["transaction_id"], "source_offset"]
               .iloc[0]) == 0
    quarantine = table(spark, m.paths.quarantine)
    assert sorted(bytes(v) for v in quarantine["raw_value"]) == sorted(invalid)
    reasons = set(quarantine["reason"])
    assert any(r.startswith("missing required field 'customer_id'") for r in reasons)


def test_a_replayed_write_adds_nothing_and_counts_the_same(spark: Any, tmp_path: Path) -> None:
    m = medallion(spark, tmp_path)
    values = [orjson.dumps(record()) for _ in range(5)] + [b"garbage"]
    first = m.write(kafka_rows(spark, values), WriteRun("app", 0, "stream"), None)
    again = m.write(kafka_rows(spark, values), WriteRun("app", 0, "stream"), None)
    assert first is not None and again is not None
    assert (again.silver_new, again.duplicates) == (first.silver_new, first.duplicates) == (5, 0)
    assert len(table(spark, m.paths.bronze)) == 6
    assert len(table(spark, m.paths.silver)) == 5
    assert len(table(spark, m.paths.quarantine)) == 1
    # Another writer (a backfill) over the same records: nothing new anywhere.
    replay = m.write(kafka_rows(spark, values), WriteRun("backfill-x", 0, "backfill:x"), None)
    assert replay is not None
    assert (replay.bronze_new, replay.silver_new, replay.duplicates,
            replay.quarantined) == (0, 0, 5, 0)
    assert len(table(spark, m.paths.bronze)) == 6
    assert len(table(spark, m.paths.silver)) == 5
    assert len(table(spark, m.paths.quarantine)) == 1


def test_a_gap_is_filled_exactly(spark: Any, tmp_path: Path) -> None:
    m = medallion(spark, tmp_path)
    values = [orjson.dumps(record()) for _ in range(10)]
    # The stream saw offsets 0-3 and 7-9; a backfill of 0-9 adds 4-6 only.
    m.write(kafka_rows(spark, values[:4]), WriteRun("app", 0, "stream"), None)
    m.write(kafka_rows(spark, values[7:], first_offset=7), WriteRun("app", 1, "stream"), None)
    counts = m.write(kafka_rows(spark, values), WriteRun("bf", 0, "backfill:bf"), None)
    assert counts is not None
    assert (counts.bronze_new, counts.silver_new, counts.duplicates) == (3, 3, 7)
    bronze = table(spark, m.paths.bronze)
    assert sorted(bronze["offset"]) == list(range(10))
    assert len(table(spark, m.paths.silver)) == 10


def test_silver_is_enriched(spark: Any, tmp_path: Path) -> None:
    m = medallion(spark, tmp_path)
    sunday_night = "2026-11-29T23:30:00Z"  # a Sunday
    r = record(event_timestamp=sunday_night, total_amount=250.0, quantity=1,
               unit_price=250.0, discount_percent=0.0)
    m.write(kafka_rows(spark, [orjson.dumps(r)], topic="t2", partition=2, first_offset=41),
            WriteRun("app", 0, "stream"), None)
    row = table(spark, m.paths.silver).iloc[0]
    assert str(row["event_date"]) == "2026-11-29"
    assert (row["event_hour"], row["day_of_week"], bool(row["is_weekend"])) == (23, 7, True)
    assert row["amount_band"] == "large"
    assert (row["source_topic"], row["source_partition"], row["source_offset"]) == ("t2", 2, 41)
    assert row["ingest_run"] == "app:0"


def test_default_expectations_count_like_an_independent_computation(
        spark: Any, tmp_path: Path) -> None:
    m = medallion(spark, tmp_path)
    old = _iso(datetime.now(UTC) - timedelta(hours=2))
    rows = [record() for _ in range(6)]
    rows += [record(total_amount=999.0), record(event_timestamp=old)]  # inconsistent, stale
    missing = {k: v for k, v in record().items() if k != "product_id"}
    values = [orjson.dumps(r) for r in rows] + [orjson.dumps(missing), b"[]",
                                                 orjson.dumps(rows[0])]
    counts = m.write(kafka_rows(spark, values), WriteRun("app", 0, "stream"), None)
    assert counts is not None
    expected_lag = sum(
        (datetime.now(UTC) - datetime.fromisoformat(r["event_timestamp"])).total_seconds()
        for r in [*rows, rows[0]]) / 9
    results = {o.expectation.name: o for o in counts.outcomes}
    assert (results["completeness"].rows_checked, results["completeness"].rows_failed) == (11, 1)
    assert (results["validity"].rows_checked, results["validity"].rows_failed) == (11, 1)
    assert (results["uniqueness"].rows_checked, results["uniqueness"].rows_failed) == (9, 1)
    assert (results["amount_consistency"].rows_checked,
            results["amount_consistency"].rows_failed) == (9, 1)
    assert (results["freshness"].rows_checked, results["freshness"].rows_failed) == (9, 1)
    assert results["freshness"].metric == pytest.approx(expected_lag, abs=30)
    assert (results["volume"].rows_checked, results["volume"].rows_failed) == (11, 0)
    assert not results["validity"].passed and results["volume"].passed
    metrics = table(spark, m.paths.quality_metrics)
    assert len(metrics) == 6
    assert set(metrics.columns) >= {"layer", "expectation", "action", "rows_checked",
                                    "rows_failed", "metric", "passed", "micro_batch_id",
                                    "checked_at"}


def test_drop_and_fail_expectations(spark: Any, tmp_path: Path) -> None:
    document = {"expectations": [
        {"name": "completeness", "layer": "silver", "check": "required_fields",
         "action": "drop"},
        {"name": "validity", "layer": "silver", "check": "contract", "action": "drop"},
        {"name": "no_cod", "layer": "silver", "predicate": "payment_method <> 'cod'",
         "action": "drop"},
    ]}
    m = medallion(spark, tmp_path, parse_expectations(document))
    values = [orjson.dumps(record(payment_method="cod")), orjson.dumps(record())]
    counts = m.write(kafka_rows(spark, values), WriteRun("app", 0, "stream"), None)
    assert counts is not None
    assert (counts.silver_new, counts.dropped, counts.quarantined) == (1, 1, 1)
    assert list(table(spark, m.paths.quarantine)["reason"]) == ["no_cod"]

    document["expectations"][2]["action"] = "fail"
    m = medallion(spark, tmp_path / "fail", parse_expectations(document))
    with pytest.raises(ExpectationFailed, match="no_cod"):
        m.write(kafka_rows(spark, values), WriteRun("app", 0, "stream"), None)
    assert not (m.paths.bronze / "_delta_log").exists(), "nothing is written"


def test_default_expectations_stay_quiet_on_clean_data(spark: Any, tmp_path: Path) -> None:
    from producers.generator import TransactionGenerator

    m = medallion(spark, tmp_path)
    gen = TransactionGenerator(seed=3)
    values = [orjson.dumps(gen.event()) for _ in range(300)]
    counts = m.write(kafka_rows(spark, values), WriteRun("app", 0, "stream"), None)
    assert counts is not None
    assert {o.expectation.name: o.rows_failed for o in counts.outcomes} == {
        "completeness": 0, "validity": 0, "uniqueness": 0, "amount_consistency": 0,
        "volume": 0, "freshness": 0}
    assert all(o.passed for o in counts.outcomes)
    assert (counts.silver_new, counts.quarantined) == (300, 0)


def test_tables_of_the_old_layout_move_to_their_layers(spark: Any, tmp_path: Path) -> None:
    from pyspark.sql import functions as F

    from worker.storage import StoragePaths
    from worker.table_moves import move_legacy_tables
    from worker.transaction_parser import contract_columns, parse_transactions

    paths = StoragePaths(Settings(data_dir=tmp_path))
    old = paths.delta / "stream" / "transactions"
    sunday = record(event_timestamp="2026-11-29T23:30:00Z", total_amount=12.5)
    (parse_transactions(kafka_rows(spark, [orjson.dumps(sunday)]))
     .select(*contract_columns()).withColumn("event_date", F.to_date("event_timestamp"))
     .write.format("delta").partitionBy("event_date").save(str(old)))
    (paths.delta / "stream" / "quarantine" / "_delta_log").mkdir(parents=True)
    move_legacy_tables(spark, paths)
    move_legacy_tables(spark, paths)  # again: nothing left to do
    assert not old.exists() and (paths.quarantine / "_delta_log").is_dir()
    row = table(spark, paths.silver).iloc[0]
    assert (row["event_hour"], row["day_of_week"], bool(row["is_weekend"]),
            row["amount_band"]) == (23, 7, True, "small")
    assert row["source_offset"] is None or row["source_offset"] != row["source_offset"]
    # The moved table takes the stream's appends.
    m = medallion(spark, tmp_path)
    m.write(kafka_rows(spark, [orjson.dumps(record())]), WriteRun("app", 0, "stream"), None)
    assert len(table(spark, paths.silver)) == 2
