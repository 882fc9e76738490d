"""The worker's data plane, assembled once Spark is up: the medallion with its
expectations, the tables recomputed behind it (dashboard, fraud scores with the served
model, gold), the stream, the batch runner and the backfill runner.

Tables from before the medallion are moved to their layer's place first
(`worker.table_moves`), and the expectations' predicates are checked against the record's
columns, so a bad expectations file stops the worker at start-up, naming the entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from contracts.events import EventType, ModelEventData, model_subject
from contracts.settings import Settings
from worker.backfill_runner import BackfillRunner
from worker.batch_runner import BatchRunner
from worker.downstream import Downstream
from worker.fraud.alert_sink import AlertSink
from worker.fraud.model_store import ModelHolder
from worker.fraud.rules import FraudRules
from worker.fraud.scorer import FraudScorer
from worker.gold.updater import GoldUpdater
from worker.health import HealthReporter
from worker.medallion import Medallion
from worker.publisher import EventPublisher
from worker.quality.checks import QualityChecks
from worker.quality.expectations import Expectation, InvalidExpectations
from worker.storage import StoragePaths
from worker.stream_manager import StreamManager
from worker.table_moves import move_legacy_tables
from worker.transaction_parser import parse_transactions

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


@dataclass
class DataPlane:
    medallion: Medallion
    downstream: Downstream
    stream: StreamManager
    batches: BatchRunner
    backfills: BackfillRunner


def build_data_plane(spark: SparkSession, settings: Settings, publisher: EventPublisher,
                     health: HealthReporter, expectations: tuple[Expectation, ...]
                     ) -> DataPlane:
    checks = QualityChecks(expectations)
    validate_predicates(spark, checks)
    move_legacy_tables(spark, StoragePaths(settings))
    medallion = Medallion(spark, settings, checks)
    downstream = build_downstream(spark, settings, publisher, medallion)
    return DataPlane(
        medallion=medallion,
        downstream=downstream,
        stream=StreamManager(spark, settings, publisher, health, medallion, downstream),
        batches=BatchRunner(spark, settings, publisher),
        backfills=BackfillRunner(spark, settings, publisher, medallion, downstream),
    )


def build_downstream(spark: SparkSession, settings: Settings, publisher: EventPublisher,
                     medallion: Medallion) -> Downstream:
    """Dashboard, fraud scores (rules + the newest trained model, alerts to the
    fraud-alerts topic) and the gold tables, all recomputed from silver."""
    paths = StoragePaths(settings)

    def model_event(event_type: str, data: dict[str, Any]) -> None:
        publisher.publish(EventType(event_type), model_subject(), ModelEventData(**data))

    model = ModelHolder(spark, paths, settings.fraud_velocity_minutes, on_event=model_event)
    fraud = FraudScorer(spark, paths, FraudRules.from_settings(settings), AlertSink(settings),
                        model)
    gold = GoldUpdater(spark, paths, settings.fraud_velocity_minutes)
    return Downstream(medallion.dashboard, fraud, gold, model)


def validate_predicates(spark: SparkSession, checks: QualityChecks) -> None:
    """Evaluate every predicate on an empty frame of parsed records; `InvalidExpectations`
    names the first that Spark cannot evaluate."""
    from pyspark.sql import functions as F

    kafka_row = ("key BINARY, value BINARY, topic STRING, partition INT, offset LONG, "
                 "timestamp TIMESTAMP, timestampType INT")
    frame = parse_transactions(spark.createDataFrame([], kafka_row)) \
        .withColumn("ingested_at", F.current_timestamp())
    try:
        checks.validate(frame)
    except ValueError as exc:
        raise InvalidExpectations(str(exc)) from None
