"""pyspark 4.2.0 with the cached spark jars: Delta read/write and the Kafka source work."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from devkit.jars import spark_jars
from tests.devkit.conftest import RunningBroker

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

pytestmark = pytest.mark.spark


@pytest.fixture(scope="module")
def spark() -> Iterator[SparkSession]:
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[2]")
        .appName("devkit-smoke")
        .config("spark.jars", ",".join(str(p) for p in spark_jars()))
        .config("spark.sql.extensions", "io.delta.sql.DeltaSparkSessionExtension")
        .config(
            "spark.sql.catalog.spark_catalog", "org.apache.spark.sql.delta.catalog.DeltaCatalog"
        )
        .config("spark.sql.shuffle.partitions", "2")
        # Delta rebuilds table state with 50 tasks by default: slow on 2 cores.
        .config("spark.databricks.delta.snapshotPartitions", "2")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )
    try:
        yield session
    finally:
        session.stop()


def test_delta_write_read_and_history(spark: SparkSession, tmp_path: Path) -> None:
    from delta.tables import DeltaTable

    path = str(tmp_path / "table")
    spark.range(5).write.format("delta").save(path)
    spark.range(5, 8).write.format("delta").mode("append").save(path)
    assert spark.read.format("delta").load(path).count() == 8
    assert spark.read.format("delta").option("versionAsOf", 0).load(path).count() == 5
    # The delta-spark 4.4.1 Python wrapper drives the 4.4.0 JVM classes.
    versions = [r.version for r in DeltaTable.forPath(spark, path).history().collect()]
    assert sorted(versions) == [0, 1]


def test_kafka_source_reads_a_topic(spark: SparkSession, devkit_broker: RunningBroker) -> None:
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    loader = jvm.java.lang.Thread.currentThread().getContextClassLoader()
    provider = jvm.java.lang.Class.forName(
        "org.apache.spark.sql.kafka010.KafkaSourceProvider", True, loader
    )
    assert provider.getName().endswith("KafkaSourceProvider")

    bootstrap, topic = devkit_broker.bootstrap, f"spark-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])[topic].result(30)
    producer = Producer({"bootstrap.servers": bootstrap})
    for i in range(3):
        producer.produce(topic, value=f"v{i}".encode())
    assert producer.flush(30) == 0

    # A real batch read exercises KafkaConfigUpdater from the (4.0.0) token-provider jar.
    frame = (
        spark.read.format("kafka")
        .option("kafka.bootstrap.servers", bootstrap)
        .option("subscribe", topic)
        .option("startingOffsets", "earliest")
        .load()
    )
    assert sorted(bytes(r.value).decode() for r in frame.select("value").collect()) == [
        "v0",
        "v1",
        "v2",
    ]
