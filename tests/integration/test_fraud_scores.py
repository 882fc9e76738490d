"""gold.fraud_scores against real Spark, Delta and a real broker: each rule alone and at its
boundaries, the levels, late data rescoring later rows with a new alert, alerts read back
from a topic, and the table equal to a plain-Python computation of the definition.

Silver rows are written by the medallion itself (records as the Kafka source hands them).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from contracts.fraud import ALERT_LEVELS, RULE_POINTS, FraudAlert, RiskLevel, Rule, risk_level
from contracts.settings import Settings
from tests.contract_cases import SAMPLE
from worker.event_spans import EventSpan
from worker.fraud.alert_sink import AlertSink
from worker.fraud.rules import FraudRules
from worker.fraud.scorer import FraudScorer, ScoreResult
from worker.storage import StoragePaths

pytestmark = pytest.mark.spark

KAFKA_ROW = ("key BINARY, value BINARY, topic STRING, partition INT, offset LONG, "
             "timestamp TIMESTAMP, timestampType INT, "
             "headers ARRAY<STRUCT<key: STRING, value: BINARY>>")
WED = datetime(2025, 1, 15, 12, 0, tzinfo=UTC)  # a Wednesday
RULES = FraudRules()


@pytest.fixture(scope="module")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from worker.spark_session import build_session

    settings = Settings(data_dir=tmp_path_factory.mktemp("spark"), spark_master="local[2]",
                        spark_driver_memory="1g")
    session = build_session(settings, app_name="fraud-score-tests")
    try:
        yield session
    finally:
        session.stop()


def txn(at: datetime, customer: str | None = None, **changes: Any) -> dict[str, Any]:
    """A plain transaction (no rule fires on a weekday noon) with `changes`."""
    amount = changes.pop("total_amount", 100.0)
    out = {**SAMPLE, "transaction_id": str(uuid.uuid4()),
           "customer_id": customer or f"CUST-{uuid.uuid4().hex[:8]}",
           "event_timestamp": at.isoformat().replace("+00:00", "Z"),
           "quantity": 1, "unit_price": amount, "discount_percent": 0.0,
           "total_amount": amount, "payment_method": "credit_card", "region": "west",
           "is_fraudulent": False}
    out.update(changes)
    return out


class Silver:
    """Writes records into silver through the medallion, one micro-batch per call."""

    def __init__(self, spark: Any, data_dir: Path) -> None:
        from worker.medallion import Medallion
        from worker.quality.checks import QualityChecks
        from worker.quality.expectations import load_expectations

        self.spark = spark
        self.medallion = Medallion(spark, Settings(data_dir=data_dir, spark_master="local[2]"),
                                   QualityChecks(load_expectations()))
        self.batches = 0
        self.offset = 0

    def write(self, records: list[dict[str, Any]]) -> None:
        from worker.medallion import WriteRun

        now = datetime.now(UTC)
        rows = []
        for record in records:
            rows.append((f"k{self.offset}".encode(), orjson.dumps(record), "tx", 0, self.offset,
                         now, 0, []))
            self.offset += 1
        frame = self.spark.createDataFrame(rows, KAFKA_ROW)
        counts = self.medallion.write(frame, WriteRun("fraud-tests", self.batches, "stream"),
                                      None)
        assert counts is not None and counts.silver_new == len(records)
        self.batches += 1


def span_of(records: list[dict[str, Any]]) -> list[EventSpan]:
    times = [datetime.fromisoformat(r["event_timestamp"]) for r in records]
    return [EventSpan(min(times), max(times) + timedelta(microseconds=1))]


def scores(spark: Any, paths: StoragePaths) -> dict[str, dict[str, Any]]:
    frame = spark.read.format("delta").load(str(paths.fraud_scores))
    rows = [r.asDict(recursive=True) for r in frame.collect()]
    assert len(rows) == len({r["transaction_id"] for r in rows}), "one row per transaction"
    return {r["transaction_id"]: r for r in rows}


# ---- the definition, in plain Python ---------------------------------------------------


def reference(silver_rows: list[dict[str, Any]]) -> dict[str, tuple[int, str, list[str], int]]:
    """transaction_id -> (score, level, reasons, velocity_count), from the written rule
    table of docs/fraud-detection.md, over every silver row."""
    window = timedelta(minutes=30)
    by_customer: dict[str, list[datetime]] = {}
    for row in silver_rows:
        by_customer.setdefault(row["customer_id"], []).append(row["ts"])
    out = {}
    for row in silver_rows:
        t = row["ts"]
        velocity = sum(1 for other in by_customer[row["customer_id"]] if t - window < other <= t)
        fired = [rule for rule, hit in (
            (Rule.KNOWN_FRAUD, row["is_fraudulent"] is True),
            (Rule.HIGH_AMOUNT, row["total_amount"] > 5000),
            (Rule.RISKY_PAYMENT, row["payment_method"] == "gift_card"),
            (Rule.RISKY_REGION, row["region"] == "northeast"),
            (Rule.NIGHT, t.hour >= 23 or t.hour < 5),
            (Rule.WEEKEND, t.isoweekday() >= 6),
            (Rule.VELOCITY, velocity > 5),
        ) if hit]
        score = sum(RULE_POINTS[rule] for rule in fired)
        out[row["transaction_id"]] = (score, risk_level(score).value,
                                      [r.value for r in fired], velocity)
    return out


def silver_rows(spark: Any, paths: StoragePaths) -> list[dict[str, Any]]:
    from pyspark.sql import functions as F

    frame = spark.read.format("delta").load(str(paths.silver)).select(
        "transaction_id", "customer_id", "total_amount", "payment_method", "region",
        "is_fraudulent", F.unix_micros("event_timestamp").alias("us"))
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    return [{**r.asDict(), "ts": epoch + timedelta(microseconds=r["us"])}
            for r in frame.collect()]


def assert_matches_reference(spark: Any, paths: StoragePaths) -> None:
    expected = reference(silver_rows(spark, paths))
    got = {tid: (r["score"], r["risk_level"], r["reasons"], r["velocity_count"])
           for tid, r in scores(spark, paths).items()}
    assert got == expected


# ---- Kafka ----------------------------------------------------------------------------


def alert_settings(bootstrap: str, data_dir: Path) -> Settings:
    from confluent_kafka.admin import AdminClient, NewTopic

    settings = Settings(kafka_bootstrap=bootstrap, data_dir=data_dir,
                        fraud_alerts_topic=f"fraud-alerts-{uuid.uuid4().hex[:10]}")
    admin = AdminClient(settings.kafka_client_config())
    for future in admin.create_topics(
            [NewTopic(settings.fraud_alerts_topic, num_partitions=2,
                      replication_factor=-1)]).values():
        future.result()
    return settings


def published(settings: Settings) -> list[FraudAlert]:
    """Every copy on the topic (duplicates kept)."""
    from confluent_kafka import TopicPartition

    from contracts.kafka_clients import end_offsets, make_consumer

    consumer = make_consumer(settings)
    try:
        ends = end_offsets(consumer, settings.fraud_alerts_topic)
        consumer.assign([TopicPartition(settings.fraud_alerts_topic, p, 0) for p in ends])
        out: list[FraudAlert] = []
        remaining = {p for p, end in ends.items() if end > 0}
        while remaining:
            msg = consumer.poll(5.0)
            assert msg is not None, "the topic ended early"
            if msg.error():
                continue
            alert = FraudAlert.model_validate_json(msg.value())
            assert msg.key() == alert.transaction_id.encode()
            assert dict(msg.headers())["alert_id"] == alert.alert_id.encode()
            out.append(alert)
            if msg.offset() >= ends[msg.partition()] - 1:
                remaining.discard(msg.partition())
        return out
    finally:
        consumer.close()


# ---- the tests ------------------------------------------------------------------------


def test_each_rule_at_its_boundaries_and_the_levels(spark: Any, tmp_path: Path,
                                                    kafka_bootstrap: str) -> None:
    settings = alert_settings(kafka_bootstrap, tmp_path)
    paths = StoragePaths(settings)
    sat, sun = datetime(2025, 1, 18, 12, tzinfo=UTC), datetime(2025, 1, 19, 12, tzinfo=UTC)
    day = WED.replace(hour=0)
    t = WED + timedelta(hours=3)  # 15:00, the velocity cases' last time
    cases: dict[str, tuple[dict[str, Any], int, list[str]]] = {}

    def case(name: str, record: dict[str, Any], score: int, reasons: list[str]) -> None:
        cases[name] = (record, score, reasons)

    case("plain", txn(WED), 0, [])
    case("known_fraud", txn(WED, is_fraudulent=True), 50, ["known_fraud"])
    case("amount_5000", txn(WED, total_amount=5000.00), 0, [])
    case("amount_5000.01", txn(WED, total_amount=5000.01), 30, ["high_amount"])
    case("gift_card", txn(WED, payment_method="gift_card"), 20, ["risky_payment"])
    case("northeast", txn(WED, region="northeast"), 15, ["risky_region"])
    case("22:59", txn(day.replace(hour=22, minute=59, second=59)), 0, [])
    case("23:00", txn(day.replace(hour=23)), 10, ["night"])
    case("04:59", txn(day.replace(hour=4, minute=59, second=59)), 10, ["night"])
    case("05:00", txn(day.replace(hour=5)), 0, [])
    case("saturday", txn(sat), 5, ["weekend"])
    case("sunday", txn(sun), 5, ["weekend"])
    case("monday", txn(datetime(2025, 1, 20, 12, tzinfo=UTC)), 0, [])
    case("critical", txn(WED, is_fraudulent=True, total_amount=9000.0), 80,
         ["known_fraud", "high_amount"])
    case("high", txn(WED, total_amount=6000.0, payment_method="gift_card"), 50,
         ["high_amount", "risky_payment"])
    # Each level's floor exactly.
    case("critical_75", txn(sat, is_fraudulent=True, payment_method="gift_card"), 75,
         ["known_fraud", "risky_payment", "weekend"])
    case("high_50", txn(sat.replace(hour=23), payment_method="gift_card", region="northeast"),
         50, ["risky_payment", "risky_region", "night", "weekend"])
    case("medium_25", txn(sun, payment_method="gift_card"), 25, ["risky_payment", "weekend"])
    case("low_10", txn(day.replace(hour=2)), 10, ["night"])
    case("medium", txn(day.replace(hour=23), payment_method="gift_card", region="northeast"),
         45, ["risky_payment", "risky_region", "night"])
    # Velocity: 5 in 30 minutes does not fire, 6 do; the window's start is exclusive.
    five = [txn(t - timedelta(minutes=m), "CUST-FIVE") for m in (29, 20, 10, 5, 0)]
    six = [txn(t - timedelta(minutes=29, seconds=59), "CUST-SIX")] + [
        txn(t - timedelta(minutes=m), "CUST-SIX") for m in (25, 20, 10, 5, 0)]
    edge = [txn(t - timedelta(minutes=m), "CUST-EDGE") for m in (30, 25, 20, 10, 5, 0)]
    peers = [txn(t, "CUST-PEERS") for _ in range(6)]
    velocity = five + six + edge + peers
    records = [record for record, _, _ in cases.values()] + velocity

    Silver(spark, tmp_path).write(records)
    sink = AlertSink(settings)
    try:
        scorer = FraudScorer(spark, paths, RULES, sink)
        result = scorer.recompute(span_of(records))
    finally:
        sink.close()
    assert result.rows_scored == len(records)

    table = scores(spark, paths)
    for name, (record, score, reasons) in cases.items():
        row = table[record["transaction_id"]]
        assert (row["score"], row["reasons"]) == (score, reasons), name
        assert row["risk_level"] == risk_level(score).value, name
        assert row["model_score"] is None and row["model_version"] is None
    assert table[cases["critical"][0]["transaction_id"]]["risk_level"] == "CRITICAL"
    assert table[cases["high"][0]["transaction_id"]]["risk_level"] == "HIGH"
    assert table[cases["medium"][0]["transaction_id"]]["risk_level"] == "MEDIUM"
    assert table[cases["gift_card"][0]["transaction_id"]]["risk_level"] == "LOW"
    assert table[cases["saturday"][0]["transaction_id"]]["risk_level"] == "MINIMAL"
    for name, level in (("critical_75", "CRITICAL"), ("high_50", "HIGH"),
                        ("medium_25", "MEDIUM"), ("low_10", "LOW")):
        assert table[cases[name][0]["transaction_id"]]["risk_level"] == level, name

    last = {name: table[rows[-1]["transaction_id"]] for name, rows in
            (("five", five), ("six", six), ("edge", edge))}
    assert (last["five"]["velocity_count"], last["five"]["reasons"]) == (5, [])
    assert (last["six"]["velocity_count"], last["six"]["reasons"]) == (6, ["velocity"])
    assert (last["edge"]["velocity_count"], last["edge"]["reasons"]) == (5, [])
    assert {(table[r["transaction_id"]]["velocity_count"], table[r["transaction_id"]]["score"])
            for r in peers} == {(6, 25)}
    assert_matches_reference(spark, paths)

    # Every HIGH/CRITICAL row alerted once, as a first alert.
    alerts = published(settings)
    alerting = {tid for tid, row in table.items() if row["risk_level"] in ALERT_LEVELS}
    assert sorted(a.transaction_id for a in alerts) == sorted(alerting)
    assert result.alerts_sent == len(alerting)
    for alert in alerts:
        row = table[alert.transaction_id]
        assert alert.previous_level is None
        assert alert.alert_id == f"{alert.transaction_id}:{row['risk_level']}"
        assert (alert.score, alert.risk_level.value, [r.value for r in alert.reasons]) == (
            row["score"], row["risk_level"], row["reasons"])


class CrashBeforeCommit(FraudScorer):
    """A worker that dies after the alerts went out and before the scores committed."""

    def _commit(self, rows: Any, replace_where: str) -> None:
        raise RuntimeError("crashed before the commit")


def test_late_data_rescores_later_rows_and_alerts_the_raise(spark: Any, tmp_path: Path,
                                                            kafka_bootstrap: str) -> None:
    settings = alert_settings(kafka_bootstrap, tmp_path)
    paths = StoragePaths(settings)
    silver = Silver(spark, tmp_path)
    sink = AlertSink(settings)
    scorer = FraudScorer(spark, paths, RULES, sink)
    start = WED.replace(hour=10)
    # Five risky purchases 5 minutes apart: 65 points each (HIGH), velocity 1..5.
    risky = [txn(start + timedelta(minutes=5 * i), "CUST-LATE", total_amount=6000.0,
                 payment_method="gift_card", region="northeast") for i in range(5)]
    other = [txn(start + timedelta(minutes=7), "CUST-OTHER")]
    try:
        silver.write(risky + other)
        first = scorer.recompute(span_of(risky + other))
        assert first == ScoreResult(6, 5)
        before = scores(spark, paths)
        assert {before[r["transaction_id"]]["risk_level"] for r in risky} == {"HIGH"}

        # A late, plain transaction 5 minutes before them: the last risky one (10:20) now
        # has 6 in its window and becomes CRITICAL; the others stay HIGH.
        late = txn(start - timedelta(minutes=5), "CUST-LATE")
        silver.write([late])
        late_spans = span_of([late])
        with pytest.raises(RuntimeError, match="crashed"):
            CrashBeforeCommit(spark, paths, RULES, sink).recompute(late_spans)
        assert scores(spark, paths) == before  # nothing committed
        second = scorer.recompute(late_spans)  # the restarted worker's recompute
        # The late row and everything up to 30 minutes after it: 10:00, 10:05 ... 10:20
        # of the customer, 10:07 of the other one.
        assert second == ScoreResult(7, 1)
        assert scorer.recompute(late_spans) == ScoreResult(7, 0)  # nothing new to say
    finally:
        sink.close()

    after = scores(spark, paths)
    raised = after[risky[-1]["transaction_id"]]
    assert (raised["risk_level"], raised["velocity_count"], raised["score"]) == (
        "CRITICAL", 6, 90)
    assert raised["reasons"][-1] == "velocity"
    assert after[late["transaction_id"]]["risk_level"] == "MINIMAL"
    assert [after[r["transaction_id"]]["risk_level"] for r in risky[:-1]] == ["HIGH"] * 4
    assert_matches_reference(spark, paths)

    alerts = published(settings)
    critical = [a for a in alerts if a.risk_level is RiskLevel.CRITICAL]
    # Sent by the crashed run and again by its retry: the same alert, the same alert_id.
    assert len(critical) == 2 and len({a.alert_id for a in critical}) == 1
    assert critical[0].transaction_id == risky[-1]["transaction_id"]
    assert critical[0].previous_level is RiskLevel.HIGH
    assert critical[0].alert_id == f"{risky[-1]['transaction_id']}:CRITICAL"
    assert sorted(a.transaction_id for a in alerts if a.risk_level is RiskLevel.HIGH) == sorted(
        r["transaction_id"] for r in risky)


def test_rebuild_scores_all_of_silver_without_alerts(spark: Any, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    paths = StoragePaths(settings)
    scorer = FraudScorer(spark, paths, RULES, None)
    assert scorer.recompute([EventSpan(WED, WED + timedelta(hours=1))]) == ScoreResult(0, 0)
    records = [txn(WED + timedelta(days=d, minutes=m), "CUST-R", is_fraudulent=True)
               for d in (0, 1) for m in range(0, 42, 6)]
    Silver(spark, tmp_path).write(records)
    assert scorer.rebuild() == ScoreResult(len(records), 0)
    assert_matches_reference(spark, paths)
