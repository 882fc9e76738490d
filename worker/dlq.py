"""The dead-letter copy of quarantined records, on the `pipeline-dlq` topic.

The quarantine Delta table is the durable copy; the DLQ is a convenience for Kafka-side
consumers. So a DLQ write that fails (topic deleted, ACL, record too large, broker away)
must never wedge the stream in a replay loop: the micro-batch records what it owes (the
offset ranges of its quarantined rows, on disk before Spark commits the micro-batch) and
moves on, and a retry thread sends the owed copies later from the quarantine table,
record by record, so one record that can never be sent (too large) is reported and
skipped instead of blocking the rest.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from confluent_kafka import KafkaError, KafkaException

from contracts.kafka_clients import make_producer
from contracts.settings import Settings
from worker.state_files import write_atomic

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)

RETRY_SECONDS = 30.0
# Short client timeouts on the hot path: a DLQ that does not answer costs a micro-batch
# seconds, not minutes, and from then on copies are owed until the retry succeeds.
_SINK_TIMEOUTS = {
    "kafka.max.block.ms": "10000",
    "kafka.request.timeout.ms": "10000",
    "kafka.delivery.timeout.ms": "20000",
}
# Per-record errors that no retry can fix: reported and skipped.
_PERMANENT = {KafkaError.MSG_SIZE_TOO_LARGE, KafkaError.INVALID_RECORD,
              KafkaError.INVALID_MSG_SIZE}


def dlq_headers() -> Any:
    """Headers naming the error and the origin, as Spark's Kafka sink takes them."""
    from pyspark.sql import functions as F

    def header(name: str, value: Any) -> Any:
        return F.struct(F.lit(name).alias("key"), value.cast("binary").alias("value"))

    return F.array(
        header("error.reason", F.col("reason")),
        header("source.topic", F.col("topic")),
        header("source.partition", F.col("partition").cast("string")),
        header("source.offset", F.col("offset").cast("string")),
    )


class DlqForwarder:
    def __init__(self, spark: SparkSession, settings: Settings, quarantine_path: Path,
                 state_file: Path, pool: str) -> None:
        self.spark = spark
        self.settings = settings
        self.quarantine_path = quarantine_path
        self.state_file = state_file
        self.pool = pool
        self._lock = threading.Lock()
        self._owed: list[dict[str, Any]] = self._load()
        self.last_error: str | None = None
        self.skipped_records = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._retry_loop, name="dlq-retry", daemon=True)
        self._thread.start()

    # ---- the hot path ------------------------------------------------------------------

    def forward(self, rows: DataFrame, batch_id: int | str) -> None:
        """Send a micro-batch's quarantined rows (raw_key, raw_value, reason, topic,
        partition, offset), or record them as owed when the DLQ is not writable."""
        from pyspark.sql import functions as F

        with self._lock:
            owing = bool(self._owed)
        if not owing:
            try:
                dlq = rows.select(F.col("raw_key").alias("key"),
                                  F.col("raw_value").alias("value"),
                                  dlq_headers().alias("headers"))
                (dlq.write.format("kafka").options(**self.settings.spark_kafka_options())
                 .options(**_SINK_TIMEOUTS).option("topic", self.settings.dlq_topic).save())
                return
            except Exception as exc:
                self.last_error = _first_line(exc)
                log.warning("DLQ write failed (%s); the copies are owed and retried every "
                            "%.0fs (quarantine holds the records)", self.last_error,
                            RETRY_SECONDS)
        ranges = (rows.groupBy("topic", "partition")
                  .agg(F.min("offset").alias("low"), F.max("offset").alias("high")).collect())
        entry = {"batch_id": batch_id,
                 "ranges": [[r["topic"], int(r["partition"]), int(r["low"]), int(r["high"])]
                            for r in ranges]}
        with self._lock:
            if entry not in self._owed:
                self._owed.append(entry)
            self._save()

    def owed(self) -> int:
        with self._lock:
            return len(self._owed)

    def problems(self) -> list[str]:
        count = self.owed()
        if not count:
            return []
        return [f"DLQ copies of {count} micro-batch(es) owed: {self.last_error}"]

    def close(self) -> None:
        self._stop.set()

    # ---- retries -----------------------------------------------------------------------

    def _retry_loop(self) -> None:
        while not self._stop.wait(RETRY_SECONDS):
            with self._lock:
                entries = list(self._owed)
            for entry in entries:
                if self._stop.is_set() or not self._send_owed(entry):
                    break
                with self._lock:
                    self._owed.remove(entry)
                    self._save()
                log.info("DLQ copies of micro-batch %s sent", entry["batch_id"])

    def _send_owed(self, entry: dict[str, Any]) -> bool:
        from pyspark.sql import functions as F

        self.spark.sparkContext.setLocalProperty("spark.scheduler.pool", self.pool)
        try:
            table = self.spark.read.format("delta").load(str(self.quarantine_path))
            wanted = None
            for topic, partition, low, high in entry["ranges"]:
                cond = ((F.col("topic") == topic) & (F.col("partition") == partition)
                        & F.col("offset").between(low, high))
                wanted = cond if wanted is None else wanted | cond
            rows = table.where(wanted).select("raw_key", "raw_value", "reason", "topic",
                                              "partition", "offset").collect()
        except Exception as exc:
            self.last_error = _first_line(exc)
            return False
        producer = make_producer(self.settings, **{"message.timeout.ms": 20_000})
        failures: list[KafkaError] = []

        def delivered(err: KafkaError | None, _msg: Any) -> None:
            if err is not None:
                failures.append(err)

        try:
            for row in rows:
                headers = [("error.reason", (row["reason"] or "").encode()),
                           ("source.topic", row["topic"].encode()),
                           ("source.partition", str(row["partition"]).encode()),
                           ("source.offset", str(row["offset"]).encode())]
                try:
                    producer.produce(self.settings.dlq_topic, key=row["raw_key"],
                                     value=row["raw_value"], headers=headers,
                                     on_delivery=delivered)
                except KafkaException as exc:
                    failures.append(exc.args[0])
                producer.poll(0)
            producer.flush(30)
        except BufferError as exc:
            self.last_error = str(exc)
            return False
        transient = [f for f in failures if f.code() not in _PERMANENT]
        permanent = len(failures) - len(transient)
        if permanent:
            self.skipped_records += permanent
            log.error("%d quarantined record(s) of micro-batch %s can never be copied to "
                      "the DLQ (%s); they stay in the quarantine table", permanent,
                      entry["batch_id"], failures[0].str())
        if transient:
            self.last_error = transient[0].str()
            return False
        return True

    # ---- state -------------------------------------------------------------------------

    def _load(self) -> list[dict[str, Any]]:
        try:
            return list(orjson.loads(self.state_file.read_bytes()))
        except FileNotFoundError:
            return []

    def _save(self) -> None:
        write_atomic(self.state_file, orjson.dumps(self._owed))


def _first_line(exc: BaseException) -> str:
    from worker.errors import short_message

    return short_message(exc, 300)
