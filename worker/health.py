"""The worker's health snapshot, carried by started/heartbeat/pong/stopping/stopped."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from contracts.events import BatchCounts, StreamHealth, WorkerHealth
from contracts.registry import Registry
from contracts.settings import Settings
from worker.spark_session import spark_alive

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

VERSION = "0.1.0"


@dataclass
class HealthReporter:
    settings: Settings
    registry: Registry
    spark: SparkSession | None = None
    stream_state: StreamHealth = field(default_factory=StreamHealth)
    started_monotonic: float = field(default_factory=time.monotonic)

    def snapshot(
        self, status: Literal["starting", "standby", "ready", "stopping", "stopped"] = "ready"
    ) -> WorkerHealth:
        alive = self.spark is not None and spark_alive(self.spark)
        return WorkerHealth(
            worker_id=self.settings.worker_id,
            status=status,
            spark_alive=alive,
            spark_version=self.spark.version if alive and self.spark is not None else None,
            spark_master=self.settings.spark_master,
            uptime_seconds=round(time.monotonic() - self.started_monotonic, 3),
            stream=self.stream_state,
            batches=BatchCounts(**self.registry.counts()),
            kafka_bootstrap=self.settings.kafka_bootstrap,
            version=VERSION,
        )
