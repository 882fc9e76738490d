"""Reading a batch's input: a bounded Kafka range or a date range of Delta history."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson
from confluent_kafka import TopicPartition

from contracts.commands import DeltaSource, KafkaSource
from contracts.kafka_clients import make_consumer
from contracts.settings import Settings
from worker.errors import SourceError
from worker.storage import StoragePaths
from worker.transaction_parser import REASON, contract_columns, parse_transactions

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


@dataclass
class SourceRows:
    """A batch's input: valid rows (the 31 contract columns), invalid records (Kafka only)
    and the cached frame behind them, released with `release()` when the batch ends."""

    valid: DataFrame
    invalid: DataFrame | None = None
    cached: DataFrame | None = None

    def release(self) -> None:
        if self.cached is not None:
            self.cached.unpersist()


def read_source(spark: SparkSession, settings: Settings, source: KafkaSource | DeltaSource
                ) -> SourceRows:
    if isinstance(source, DeltaSource):
        return SourceRows(_read_delta(spark, settings, source))
    return _read_kafka(spark, settings, source)


def _read_delta(spark: SparkSession, settings: Settings, source: DeltaSource) -> DataFrame:
    from delta.tables import DeltaTable
    from pyspark.sql import functions as F

    path = str(StoragePaths(settings).transactions)
    if not DeltaTable.isDeltaTable(spark, path):
        raise SourceError(f"no transaction history at {path}: seed it with `pipeline seed` "
                          "or start the stream first")
    return (
        spark.read.format("delta").load(path)
        .where(F.col("event_date").between(F.lit(source.start_date), F.lit(source.end_date)))
        .select(*contract_columns())
    )


def _read_kafka(spark: SparkSession, settings: Settings, source: KafkaSource) -> SourceRows:
    from pyspark.sql import functions as F

    options = {
        **settings.spark_kafka_options(),
        "subscribe": source.topic,
        "failOnDataLoss": "true",
        "kafkaConsumer.pollTimeoutMs": "30000",
        **_offset_options(settings, source),
    }
    df = spark.read.format("kafka").options(**options).load()
    # Persisted so the range is read from Kafka once, for both the valid and invalid rows.
    parsed = parse_transactions(df).persist()
    valid = parsed.where(F.col(REASON).isNull()).select(*contract_columns())
    invalid = parsed.where(F.col(REASON).isNotNull())
    return SourceRows(valid, invalid, parsed)


def _offset_options(settings: Settings, source: KafkaSource) -> dict[str, str]:
    """Spark offset options, checked against the topic's real offsets first so a bad range
    fails at once with a clear message instead of a long poll timeout."""
    bounds = topic_watermarks(settings, source.topic)
    opts: dict[str, str] = {}
    for name, spec, default in (("starting", source.start_offset, -2),
                                ("ending", source.end_offset, -1)):
        if isinstance(spec, datetime):
            opts[f"{name}Timestamp"] = str(int(spec.timestamp() * 1000))
            if name == "starting":
                opts["startingOffsetsByTimestampStrategy"] = "latest"
        elif isinstance(spec, dict):
            per_partition: dict[str, int] = {}
            for partition, (low, high) in bounds.items():
                offset = spec.get(str(partition), default)
                if offset >= 0 and not low <= offset <= high:
                    raise SourceError(
                        f"{name} offset {offset} is out of range for {source.topic} partition "
                        f"{partition} (available: {low}..{high})")
                per_partition[str(partition)] = offset
            unknown = set(spec) - {str(p) for p in bounds}
            if unknown:
                raise SourceError(f"topic {source.topic} has no partition(s) {sorted(unknown)}")
            opts[f"{name}Offsets"] = orjson.dumps({source.topic: per_partition}).decode()
        else:
            opts[f"{name}Offsets"] = spec
    return opts


def topic_watermarks(settings: Settings, topic: str) -> dict[int, tuple[int, int]]:
    consumer = make_consumer(settings)
    try:
        meta = consumer.list_topics(topic, timeout=10).topics.get(topic)
        if meta is None or meta.error is not None or not meta.partitions:
            raise SourceError(f"Kafka topic {topic!r} does not exist")
        return {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            for p in meta.partitions
        }
    finally:
        consumer.close()


def apply_filters(df: DataFrame, filters: dict[str, Any]) -> DataFrame:
    """Whitelisted column filters (validated by the contract): one value, or a list = IN."""
    from pyspark.sql import functions as F

    for column, spec in sorted(filters.items()):
        values = spec if isinstance(spec, list) else [spec]
        df = df.where(F.col(column).isin(*values))
    return df
