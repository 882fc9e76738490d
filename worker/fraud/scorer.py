"""gold.fraud_scores: the rule score of every silver transaction, recomputed for the
event-time spans a write touched, with an alert on `fraud-alerts` when a transaction
reaches HIGH or CRITICAL (docs/fraud-detection.md).

A new row changes the velocity of the same customer's rows up to one window after it,
so a span is widened by the window after it (the affected rows) and those rows are
scored over a context widened by the window before them (what their counts see).

Alerts go out before the scores are committed: a crash in between leaves the table as it
was, and the next recompute of the span finds the same transitions and sends the same
alerts again (same `alert_id`, which consumers dedupe on). An alert is never lost; it may
be delivered twice.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from contracts.fraud import ALERT_LEVELS, LEVEL_RANK, FraudAlert, RiskLevel, alert_id
from contracts.silver import PARTITION_COLUMN
from worker.event_spans import EventSpan, merge_spans, sql_in_spans, widen
from worker.fraud.rules import RISK_LEVEL, FraudRules, score_frame
from worker.storage import StoragePaths

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from worker.fraud.alert_sink import AlertSink

log = logging.getLogger(__name__)

# gold.fraud_scores, in table order.
SCORE_COLUMNS: tuple[str, ...] = (
    "transaction_id", "customer_id", "event_timestamp", "total_amount", "score",
    "risk_level", "reasons", "velocity_count", "model_score", "model_version", "scored_at",
    PARTITION_COLUMN,
)
_SILVER_COLUMNS = ("transaction_id", "customer_id", "event_timestamp", "total_amount",
                   "is_fraudulent", "payment_method", "region", PARTITION_COLUMN)


class ModelScorer(Protocol):
    """What the trained model offers the scorer (worker.fraud.model_store.ModelHolder)."""

    def apply(self, frame: DataFrame) -> DataFrame:
        """`frame` with `model_score` (double) and `model_version` (string) added, null
        when there is no model."""
        ...


@dataclass(frozen=True)
class ScoreResult:
    rows_scored: int
    alerts_sent: int


def date_predicate(column: str, spans: list[EventSpan]) -> str:
    """The UTC dates the spans cover, as a predicate on a date column (partition
    pruning next to a timestamp predicate)."""
    parts = []
    for span in spans:
        first = span.start.astimezone(UTC).date()
        last = (span.end - timedelta(microseconds=1)).astimezone(UTC).date()
        parts.append(f"({column} >= '{first.isoformat()}' AND {column} <= '{last.isoformat()}')")
    return " OR ".join(parts) if parts else "false"


def spans_predicate(spans: list[EventSpan]) -> str:
    """Rows with an event time in the spans, with the event_date bounds that prune."""
    return (f"({date_predicate(PARTITION_COLUMN, spans)}) AND "
            f"({sql_in_spans('event_timestamp', spans)})")


class FraudScorer:
    def __init__(self, spark: SparkSession, paths: StoragePaths, rules: FraudRules,
                 alerts: AlertSink | None, model: ModelScorer | None = None) -> None:
        self.spark = spark
        self.paths = paths
        self.rules = rules
        self.alerts = alerts
        self.model = model
        # The stream's refresher and backfills both recompute; one at a time, so that the
        # old levels an alert is judged against are the committed ones.
        self._lock = threading.Lock()

    def recompute(self, spans: list[EventSpan]) -> ScoreResult:
        """Rescore the rows whose score a write into `spans` may have changed, send the
        alerts they raise, then commit them."""
        if not spans:
            return ScoreResult(0, 0)
        window = self.rules.velocity_window
        affected = widen(merge_spans(spans), after=window)
        context = widen(affected, before=window)
        with self._lock:
            silver = self._silver()
            if silver is None:
                return ScoreResult(0, 0)
            rows = self._scored(silver.where(spans_predicate(context)), scored_at=_now())
            rows = rows.where(sql_in_spans("event_timestamp", affected)).persist()
            try:
                count = rows.count()
                alerts = self._alerts(rows, affected)
                if alerts and self.alerts is not None:
                    self.alerts.send(alerts)  # raises unless every alert was delivered
                self._commit(rows, spans_predicate(affected))
                sent = len(alerts) if self.alerts is not None else 0
            finally:
                rows.unpersist()
        log.info("fraud scores: %d rows rescored in %d span(s), %d alert(s)", count,
                 len(affected), sent)
        return ScoreResult(count, sent)

    def rebuild(self) -> ScoreResult:
        """Score all of silver into a new version of the table, without alerts."""
        with self._lock:
            silver = self._silver()
            if silver is None:
                return ScoreResult(0, 0)
            rows = self._scored(silver, scored_at=_now()).persist()
            try:
                count = rows.count()
                (rows.write.format("delta").mode("overwrite").option("overwriteSchema", "true")
                 .partitionBy(PARTITION_COLUMN).save(str(self.paths.fraud_scores)))
            finally:
                rows.unpersist()
        return ScoreResult(count, 0)

    # ---- steps ---------------------------------------------------------------------------

    def _silver(self) -> DataFrame | None:
        """Silver at its current version, pinned: the rows alerted on and the rows
        committed must be the same ones while the stream keeps appending."""
        from delta.tables import DeltaTable

        path = str(self.paths.silver)
        if not DeltaTable.isDeltaTable(self.spark, path):
            return None
        version = DeltaTable.forPath(self.spark, path).history(1).collect()[0]["version"]
        return self.spark.read.format("delta").option("versionAsOf", version).load(path)

    def _scored(self, silver: DataFrame, *, scored_at: datetime) -> DataFrame:
        from pyspark.sql import functions as F

        columns = list(_SILVER_COLUMNS) if self.model is None else silver.columns
        frame = score_frame(silver.select(*columns), self.rules)
        if self.model is not None:
            frame = self.model.apply(frame)
        else:
            frame = (frame.withColumn("model_score", F.lit(None).cast("double"))
                     .withColumn("model_version", F.lit(None).cast("string")))
        return (frame.withColumn("scored_at", F.lit(scored_at).cast("timestamp"))
                .select(*SCORE_COLUMNS))

    def _old_levels(self, affected: list[EventSpan]) -> DataFrame | None:
        from delta.tables import DeltaTable
        from pyspark.sql import functions as F

        path = str(self.paths.fraud_scores)
        if not DeltaTable.isDeltaTable(self.spark, path):
            return None
        return (self.spark.read.format("delta").load(path)
                .where(spans_predicate(affected))
                .select("transaction_id", F.col(RISK_LEVEL).alias("old_level")))

    def _alerts(self, rows: DataFrame, affected: list[EventSpan]) -> list[FraudAlert]:
        """Alerts for the rows that reached HIGH/CRITICAL or went up within them."""
        from pyspark.sql import functions as F

        candidates = rows.where(F.col(RISK_LEVEL).isin([lv.value for lv in ALERT_LEVELS]))
        old = self._old_levels(affected)
        if old is None:
            candidates = candidates.withColumn("old_level", F.lit(None).cast("string"))
        else:
            candidates = candidates.join(old, "transaction_id", "left")
        # The event time as epoch microseconds: collect() would hand a naive datetime in
        # the Python process's zone, whatever the session's.
        candidates = candidates.withColumn("event_us", F.unix_micros(F.col("event_timestamp")))
        now = _now()
        alerts = [alert for row in candidates.collect()
                  if (alert := to_alert(row.asDict(recursive=True), now)) is not None]
        return sorted(alerts, key=lambda a: (a.event_timestamp, a.transaction_id))

    def _commit(self, rows: DataFrame, replace_where: str) -> None:
        from delta.tables import DeltaTable

        path = str(self.paths.fraud_scores)
        writer = rows.write.format("delta").partitionBy(PARTITION_COLUMN)
        if DeltaTable.isDeltaTable(self.spark, path):
            writer.mode("overwrite").option("replaceWhere", replace_where).save(path)
        else:
            writer.mode("append").save(path)


def to_alert(row: dict[str, Any], alerted_at: datetime) -> FraudAlert | None:
    """The alert a scored row raises against its previous level (`old_level`), if any."""
    level = RiskLevel(row[RISK_LEVEL])
    old = RiskLevel(row["old_level"]) if row.get("old_level") else None
    if level not in ALERT_LEVELS:
        return None
    if old in ALERT_LEVELS and LEVEL_RANK[level] <= LEVEL_RANK[old]:
        return None
    return FraudAlert(
        alert_id=alert_id(row["transaction_id"], level),
        transaction_id=row["transaction_id"],
        customer_id=row["customer_id"],
        score=row["score"],
        risk_level=level,
        previous_level=old if old in ALERT_LEVELS else None,
        reasons=row["reasons"],
        velocity_count=row["velocity_count"],
        total_amount=row["total_amount"],
        event_timestamp=_from_micros(row["event_us"]),
        model_score=row.get("model_score"),
        model_version=row.get("model_version"),
        alerted_at=alerted_at,
    )


def _from_micros(micros: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=micros)


def _now() -> datetime:
    return datetime.now(UTC)
