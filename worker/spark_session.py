"""The one SparkSession of the worker: FAIR pools, Delta, Kafka source, jars from disk."""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from contracts.settings import Settings

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

STREAMING_POOL = "streaming-pool"
BATCH_POOL = "batch-pool"
FAIR_SCHEDULER_FILE = Path(__file__).with_name("fairscheduler.xml")
# Spark's default pattern plus what Kafka security settings are called.
REDACTION_REGEX = r"(?i)secret|password|token|access[.]?key|jaas|sasl"


def build_session(settings: Settings, app_name: str = "pipeline-worker") -> SparkSession:
    """Start (or reuse) the driver's session. Jars come from the project-local cache, so
    start-up needs no network; a missing cache raises JarCacheError with the fix."""
    from pyspark.sql import SparkSession

    from devkit.jars import spark_jars

    jars = spark_jars()
    cores = _core_count(settings.spark_master)
    # Python workers must use this interpreter, whatever PATH says.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = (
        SparkSession.builder.appName(app_name)
        .master(settings.spark_master)
        .config("spark.jars", ",".join(str(j) for j in jars))
        .config("spark.driver.memory", settings.spark_driver_memory)
        .config("spark.sql.extensions", "io.delta.sql.DeltaSparkSessionExtension")
        .config("spark.sql.catalog.spark_catalog",
                "org.apache.spark.sql.delta.catalog.DeltaCatalog")
        .config("spark.scheduler.mode", "FAIR")
        .config("spark.scheduler.allocation.file", str(FAIR_SCHEDULER_FILE))
        .config("spark.sql.session.timeZone", "UTC")
        # A record with a repeated key keeps the last value, as the contract's decoder does
        # (worker.transaction_parser), instead of failing to parse.
        .config("spark.sql.variant.allowDuplicateKeys", "true")
        # Small data on few cores suffers from 200 shuffle partitions.
        .config("spark.sql.shuffle.partitions", str(max(cores, 2)))
        .config("spark.sql.adaptive.enabled", "true")
        # Delta rebuilds table state with 50 tasks by default; on a few cores each task's
        # code generation dominates, so match the core count.
        .config("spark.databricks.delta.snapshotPartitions", str(max(cores, 2)))
        .config("spark.sql.streaming.stopGracefullyOnShutdown", "true")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.ui.enabled", str(settings.spark_ui).lower())
        # Kafka credentials reach Spark as source/sink options (`kafka.sasl.jaas.config`
        # holds the password): redacted wherever Spark shows options or conf (the UI's
        # environment tab, plans, logs). Values are matched too, not just the keys.
        .config("spark.redaction.regex", REDACTION_REGEX)
        .config("spark.sql.redaction.options.regex", rf"{REDACTION_REGEX}|url")
        .config("spark.databricks.delta.schema.autoMerge.enabled", "false")
        .config("spark.sql.streaming.forceDeleteTempCheckpointLocation", "true")
        # The contract parse compiles to one method larger than the JIT's 8 KB default limit,
        # which left it interpreted (bench.parse_profile: ~1.7x slower).
        .config("spark.driver.extraJavaOptions",
                "-Dlog4j2.level=WARN -XX:-DontCompileHugeMethods")
    )
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    return spark


def _core_count(master: str) -> int:
    if master.startswith("local[") and master.endswith("]"):
        inner = master[6:-1].split(",")[0]
        if inner.isdigit():
            return int(inner)
    return os.cpu_count() or 2


def spark_alive(spark: SparkSession) -> bool:
    try:
        return not spark.sparkContext._jsc.sc().isStopped()  # type: ignore[union-attr]
    except Exception:
        return False


class SparkStarter:
    """Builds the session in a background thread, so the worker can join its group and
    rebuild its registry meanwhile; `result()` waits for it (and re-raises its error)."""

    def __init__(self, settings: Settings) -> None:
        self._session: SparkSession | None = None
        self._error: BaseException | None = None
        self._done = threading.Event()
        threading.Thread(target=self._build, args=(settings,), name="spark-start",
                         daemon=True).start()

    def _build(self, settings: Settings) -> None:
        try:
            self._session = build_session(settings)
        except BaseException as exc:  # handed to the thread that waits for the session
            self._error = exc
        finally:
            self._done.set()

    def done(self) -> bool:
        return self._done.is_set()

    def result(self) -> SparkSession:
        self._done.wait()
        if self._error is not None:
            raise self._error
        assert self._session is not None
        return self._session
