"""The gold business tables against real Spark and Delta, each compared with an
independent plain-Python computation of its definition (docs/gold-tables.md): windows
aligned to the epoch, "online" for a null store, nulls never counted as distinct values,
rates rounded half-up, revenue 0 without completed transactions. Then late data: rows
appended to an earlier window, only their spans recomputed, every table equal to the
computation over all rows while the windows outside the spans keep their `updated_at`.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from contracts.settings import Settings
from contracts.silver import SILVER_EXTRA_COLUMNS, amount_band, time_enrichments
from contracts.spark_schema import spark_schema_json
from tests.contract_cases import SAMPLE
from tests.gold_reference import EPOCH, TABLES, assert_matches, expected
from worker.event_spans import EventSpan
from worker.storage import StoragePaths

pytestmark = pytest.mark.spark

DAY = datetime(2025, 3, 10, tzinfo=UTC)  # a Monday; fixed, so no "now" is involved
SCORES_DDL = ("transaction_id STRING, risk_level STRING, reasons ARRAY<STRING>, "
              "event_timestamp TIMESTAMP, event_date DATE")
VELOCITY = timedelta(minutes=30)


@pytest.fixture(scope="module")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from worker.spark_session import build_session

    settings = Settings(data_dir=tmp_path_factory.mktemp("spark"), spark_master="local[2]",
                        spark_driver_memory="1g")
    session = build_session(settings, app_name="gold-tests")
    try:
        yield session
    finally:
        session.stop()


# ---- the data ----------------------------------------------------------------------------


def txn(n: int, at: datetime, **changes: Any) -> dict[str, Any]:
    """A silver row: SAMPLE with a varied mix of the grouped and counted fields."""
    row = dict(SAMPLE)
    row.update(
        transaction_id=f"tx-{n:03d}", event_timestamp=at, processing_timestamp=at,
        customer_id=f"C{n % 5}", store_id=[None, "S1", "S2", "S3"][n % 4],
        region="west" if n % 2 == 0 else "east",
        session_id=None if n % 7 == 0 else f"sess-{n % 6}",
        payment_method=None if n % 11 == 0 else ["credit_card", "gift_card", "paypal"][n % 3],
        transaction_status="failed" if n % 3 == 0 else "completed",
        total_amount=10.0 + n * 37.5, is_fraudulent=False)
    row.update(changes)
    return row


def initial_rows() -> list[dict[str, Any]]:
    rows = []
    # 10:00-11:00: 32 rows, one fraudulent (hourly rate 1/32 -> 3.125 -> 3.13); the first
    # half hour's "west" rows are 8 with that fraud among them (1/8 -> 12.5).
    ten = DAY.replace(hour=10)
    for i in range(32):
        rows.append(txn(i, ten + timedelta(seconds=30 + 112 * i), is_fraudulent=(i == 4)))
    for i in range(4):  # 09:41-09:52
        rows.append(txn(100 + i, DAY.replace(hour=9, minute=41) + timedelta(minutes=3 * i)))
    for i in range(8):  # 11:05-11:33
        rows.append(txn(200 + i, DAY.replace(hour=11, minute=5) + timedelta(minutes=4 * i),
                        is_fraudulent=(i == 1)))
    # Alone in store S7, not completed: in exactly 3 store windows, each with revenue 0.
    rows.append(txn(300, DAY.replace(hour=11, minute=37), store_id="S7",
                    transaction_status="pending"))
    return rows


def late_rows() -> list[dict[str, Any]]:
    at = DAY.replace(hour=10, minute=12)
    return [txn(400 + i, at + timedelta(minutes=4 * i), is_fraudulent=(i == 2),
                store_id=[None, "S1", "S8", "S2", None][i], customer_id=f"C{i % 3}")
            for i in range(5)]  # 10:12-10:28


def score(row: dict[str, Any]) -> dict[str, Any]:
    n = int(row["transaction_id"][3:])
    level = "HIGH" if n % 9 == 0 else "CRITICAL" if n % 13 == 5 else "LOW"
    reasons = ["velocity"] if n % 10 == 7 else ["night"] if n % 4 == 1 else []
    return {"transaction_id": row["transaction_id"], "risk_level": level, "reasons": reasons,
            "event_timestamp": row["event_timestamp"]}


def scored(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Scores of most rows; a few have none (not scored yet)."""
    return [score(r) for r in rows if int(r["transaction_id"][3:]) % 8 != 6]


def write_silver(spark: Any, paths: StoragePaths, rows: list[dict[str, Any]]) -> None:
    from pyspark.sql.types import StructType

    schema = StructType.fromJson(spark_schema_json(extra=list(SILVER_EXTRA_COLUMNS)))
    full = [{**r, **time_enrichments(r["event_timestamp"]),
             "amount_band": amount_band(r["total_amount"]), "source_topic": None,
             "source_partition": None, "source_offset": None, "ingest_run": "test:0"}
            for r in rows]
    frame = spark.createDataFrame([tuple(r[f.name] for f in schema.fields) for r in full],
                                  schema)
    frame.write.format("delta").mode("append").partitionBy("event_date").save(
        str(paths.silver))


def write_scores(spark: Any, paths: StoragePaths, rows: list[dict[str, Any]]) -> None:
    data = [(s["transaction_id"], s["risk_level"], s["reasons"], s["event_timestamp"],
             s["event_timestamp"].date()) for s in rows]
    (spark.createDataFrame(data, SCORES_DDL).write.format("delta").mode("append")
     .partitionBy("event_date").save(str(paths.fraud_scores)))


# ---- reading the tables back -------------------------------------------------------------


def stored(spark: Any, paths: StoragePaths, table: str) -> dict[tuple[Any, ...], dict[str, Any]]:
    """The table's rows by (window_start, keys...); timestamps as aware UTC datetimes."""
    from pyspark.sql import functions as F

    path = {"gold.store_activity": paths.store_activity,
            "gold.customer_activity": paths.customer_activity,
            "gold.region_activity": paths.region_activity,
            "gold.hourly_summary": paths.hourly_summary}[table]
    frame = spark.read.format("delta").load(str(path))
    times = ("window_start", "window_end", "updated_at")
    frame = frame.select(*[F.unix_micros(c).alias(c) if c in times else c
                           for c in frame.columns])
    keys = TABLES[table][2]
    out = {}
    for row in frame.collect():
        d = row.asDict()
        for c in times:
            d[c] = EPOCH + timedelta(microseconds=d[c])
        out[(d.pop("window_start"), *(d.pop(k) for k in keys))] = d
    return out


def schema_of(spark: Any, path: Path) -> dict[str, str]:
    return {f.name: f.dataType.simpleString()
            for f in spark.read.format("delta").load(str(path)).schema.fields}


# ---- the test ----------------------------------------------------------------------------


def test_gold_tables_follow_their_definitions_and_late_data(spark: Any, tmp_path: Path
                                                           ) -> None:
    from worker.gold import customer_activity
    from worker.gold.updater import GoldUpdater

    paths = StoragePaths(Settings(data_dir=tmp_path))
    rows = initial_rows()
    write_silver(spark, paths, rows)

    # No fraud scores table yet: nothing is high-risk or suspicious.
    silver = spark.read.format("delta").load(str(paths.silver))
    no_scores = customer_activity.compute(silver, None).collect()
    assert len(no_scores) == len(expected("gold.customer_activity", rows, None))
    assert {(r["high_risk_count"], r["suspicious"]) for r in no_scores} == {(0, False)}

    # With scores, every table equals its definition; the first write creates the tables.
    scores = scored(rows)
    write_scores(spark, paths, scores)
    updater = GoldUpdater(spark, paths, velocity_minutes=VELOCITY.total_seconds() / 60)
    written = updater.rebuild()
    before = {table: stored(spark, paths, table) for table in TABLES}
    for table, actual in before.items():
        assert_matches(actual, expected(table, rows, scores))
        assert written[table] == len(actual)

    # Spot checks of the edge cases the comparison covers.
    store = before["gold.store_activity"]
    s7 = sorted(k[0] for k in store if k[1] == "S7")
    assert [t.strftime("%H:%M") for t in s7] == ["11:25", "11:30", "11:35"]
    assert all(store[(t, "S7")]["revenue"] == 0.0 for t in s7)
    assert any(k[1] == "online" for k in store) and not any(k[1] is None for k in store)
    assert before["gold.hourly_summary"][(DAY.replace(hour=10),)]["fraud_rate_pct"] == 3.13
    assert before["gold.region_activity"][(DAY.replace(hour=10), "west")][
        "fraud_rate_pct"] == 12.5
    assert {m["suspicious"] for m in before["gold.customer_activity"].values()} == {True,
                                                                                  False}

    assert schema_of(spark, paths.store_activity) == {
        "window_start": "timestamp", "window_end": "timestamp", "store_id": "string",
        "txn_count": "bigint", "revenue": "double", "avg_value": "double",
        "fraud_count": "bigint", "fraud_rate_pct": "double", "unique_customers": "bigint",
        "unique_sessions": "bigint", "updated_at": "timestamp"}
    assert schema_of(spark, paths.customer_activity)["suspicious"] == "boolean"
    assert (schema_of(spark, paths.hourly_summary)["payment_method_counts"]
            == "map<string,bigint>")

    # Late data in 10:12-10:28: only the windows overlapping its span are rewritten.
    late = late_rows()
    write_silver(spark, paths, late)
    write_scores(spark, paths, scored(late))
    span = EventSpan(DAY.replace(hour=10, minute=10), DAY.replace(hour=10, minute=30))
    written = updater.recompute([span])
    rows, scores = rows + late, scores + scored(late)
    for table, (size, _, _) in TABLES.items():
        actual = stored(spark, paths, table)
        assert_matches(actual, expected(table, rows, scores))
        reach = span.end + (VELOCITY if table == "gold.customer_activity" else timedelta(0))
        assert written[table] == sum(1 for key in actual
                                     if key[0] < reach and key[0] + size > span.start)
        for key, old in before[table].items():
            start = key[0]
            overlaps = start < reach and start + size > span.start
            assert (actual[key]["updated_at"] == old["updated_at"]) is not overlaps, (
                table, key)
    assert date(2025, 3, 10) == DAY.date()  # the data stayed within one event_date
