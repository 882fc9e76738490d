"""The worker's health snapshot, carried by started/heartbeat/pong/stopping/stopped."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from contracts.events import BatchCounts, RegistryStats, StreamHealth, WorkerHealth
from contracts.registry import Registry
from contracts.settings import Settings
from worker.spark_session import spark_alive

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

VERSION = "0.1.0"

Status = Literal["starting", "standby", "ready", "degraded", "stopping", "stopped"]


class HealthReporter:
    def __init__(self, settings: Settings, registry: Registry) -> None:
        self.settings = settings
        self.registry = registry
        self.spark: SparkSession | None = None
        self.started_monotonic = time.monotonic()
        self.epoch: int | None = None
        self.registry_stats: RegistryStats | None = None
        # Sources of "degraded" reasons (the publisher's backlog, the stream's restarts).
        self.problem_sources: list[Callable[[], list[str]]] = []
        self._lock = threading.Lock()  # stream state is written by stream threads
        self._stream = StreamHealth()

    @property
    def stream_state(self) -> StreamHealth:
        with self._lock:
            return self._stream

    def update_stream(self, **changes: Any) -> StreamHealth:
        with self._lock:
            self._stream = self._stream.model_copy(update=changes)
            return self._stream

    def replace_stream(self, state: StreamHealth) -> None:
        with self._lock:
            self._stream = state

    def problems(self) -> list[str]:
        return [p for source in self.problem_sources for p in source()]

    def snapshot(self, status: Status = "ready") -> WorkerHealth:
        alive = self.spark is not None and spark_alive(self.spark)
        problems = self.problems()
        if status == "ready" and problems:
            status = "degraded"
        return WorkerHealth(
            worker_id=self.settings.worker_id,
            status=status,
            degraded_reasons=problems,
            epoch=self.epoch,
            spark_alive=alive,
            spark_version=self.spark.version if alive and self.spark is not None else None,
            spark_master=self.settings.spark_master,
            uptime_seconds=round(time.monotonic() - self.started_monotonic, 3),
            stream=self.stream_state,
            batches=BatchCounts(**self.registry.counts()),
            kafka_bootstrap=self.settings.kafka_bootstrap,
            version=VERSION,
            registry=self.registry_stats if status in ("ready", "degraded") else None,
        )
