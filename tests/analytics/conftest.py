"""Fixtures for the analytics tests: one plain local SparkSession and the test rows."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pyspark import SparkContext
from pyspark.sql import DataFrame, SparkSession

from .data import DELTA_SCHEMA, Row, build_rows, with_event_date


@pytest.fixture(scope="package")
def spark() -> Iterator[SparkSession]:
    """A plain local session (no Delta/Kafka jars) for this package only.

    If this fixture launched the JVM, it also shuts the JVM down afterwards: a later
    getOrCreate() elsewhere in the same pytest run would otherwise silently reuse a JVM
    started without the jars/configuration that other test packages need.
    """
    launched_jvm = SparkContext._gateway is None
    existing = SparkSession.getActiveSession()
    session = (
        SparkSession.builder.master("local[2]")
        .appName("analytics-tests")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.memory", "1g")
        .getOrCreate()
    )
    # getOrCreate may hand back a session another test package started; make sure the
    # settings the analyses rely on hold for these tests anyway.
    session.conf.set("spark.sql.session.timeZone", "UTC")
    session.conf.set("spark.sql.shuffle.partitions", "2")
    yield session
    if existing is None:
        session.stop()
    if launched_jvm:
        _shutdown_jvm()


def _shutdown_jvm() -> None:
    gateway = SparkContext._gateway
    if gateway is None:
        return
    gateway.shutdown()
    proc = getattr(gateway, "proc", None)
    if proc is not None and proc.stdin is not None:
        # The gateway JVM exits when its stdin reaches EOF (PythonGatewayServer).
        proc.stdin.close()
        proc.wait(timeout=60)
    SparkContext._gateway = None
    SparkContext._jvm = None


@pytest.fixture(scope="session")
def rows() -> list[Row]:
    return build_rows()


@pytest.fixture(scope="package")
def transactions(spark: SparkSession, rows: list[Row]) -> DataFrame:
    # Cached so the many analyses don't re-serialise the Python rows each time.
    df = spark.createDataFrame(with_event_date(rows), schema=DELTA_SCHEMA)
    # Spread over several partitions so partial aggregation and merging are exercised.
    return df.repartition(3).cache()
