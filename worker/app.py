"""The worker: one long-lived Spark driver answering commands from Kafka.

Stop order (written down because it matters, see `Worker.run`):
  1. stop taking commands (the loop ends; uncommitted commands stay for the next worker);
  2. stop the stream at a micro-batch boundary;
  3. let running batches finish within the drain timeout, cancel the rest (they re-run
     on the next start);
  4. publish `worker.stopped` and flush the producer;
  5. stop Spark.
"""

from __future__ import annotations

import logging
import time
from contextlib import ExitStack
from dataclasses import dataclass

from confluent_kafka import Consumer, KafkaError, Message, TopicPartition

from contracts.commands import decode_command
from contracts.errors import ContractError, ErrorCode
from contracts.events import (
    CommandRejectedData,
    EventType,
    command_subject,
    worker_subject,
)
from contracts.kafka_clients import ensure_topics, make_consumer, make_producer, read_events
from contracts.registry import Registry, fold_events
from contracts.settings import Settings
from worker.batch_runner import BatchRunner
from worker.errors import CommandRefused
from worker.handlers import CommandHandlers
from worker.health import HealthReporter
from worker.publisher import EventPublisher
from worker.signals import StopFlag, install_signal_handlers
from worker.spark_session import build_session
from worker.stream_manager import StreamManager

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StopConditions:
    """Let tests and scripts end a worker by itself."""

    max_commands: int | None = None
    idle_timeout: float | None = None


class Worker:
    def __init__(self, settings: Settings, stop_conditions: StopConditions | None = None) -> None:
        self.settings = settings
        self.stop_conditions = stop_conditions or StopConditions()
        self.stop_flag = StopFlag()
        self.commands_handled = 0
        self._assigned: list[TopicPartition] = []
        self._held: Message | None = None
        self._standby_since = time.monotonic()

    def run(self, *, handle_signals: bool = True) -> int:
        if handle_signals:
            install_signal_handlers(self.stop_flag)
        settings = self.settings
        with ExitStack() as stack:
            created = ensure_topics(settings)
            if created:
                log.info("created topics: %s", ", ".join(created))
            # Filled once this worker is the active one (see _await_leadership).
            registry = Registry()
            producer = make_producer(settings)
            publisher = EventPublisher(producer, settings, registry)
            health = HealthReporter(settings, registry)

            log.info("starting Spark (%s)", settings.spark_master)
            spark = build_session(settings)
            health.spark = spark
            stack.callback(self._stop_spark, spark)                       # 5.
            stack.callback(self._publish_stopped, publisher, health)      # 4.
            batches = BatchRunner(spark, settings, publisher)
            stack.callback(self._drain_batches, batches)                  # 3.
            stream = StreamManager(spark, settings, publisher, health)
            stack.callback(stream.shutdown)                               # 2.
            if self.stop_flag.is_set():
                return 0

            consumer = make_consumer(
                settings, group_id=settings.consumer_group,
                **{"enable.partition.eof": False,
                   # Sticky: a joining standby must not take the partition from a healthy
                   # active worker (an eager rebalance may hand it to the newcomer).
                   "partition.assignment.strategy": "cooperative-sticky",
                   # A dead active worker is noticed within this, and a standby takes over.
                   "session.timeout.ms": int(settings.takeover_seconds * 1000),
                   "heartbeat.interval.ms": max(500, int(settings.takeover_seconds * 200))},
            )
            stack.callback(consumer.close)                                # 1.
            consumer.subscribe([settings.commands_topic], on_assign=self._on_assign,
                               on_revoke=self._on_revoke)
            handlers = CommandHandlers(settings, publisher, health, stream, batches,
                                       self.stop_flag)
            if not self._await_leadership(consumer, publisher, health):
                return 0
            # Active now: the log is the truth, read to its end before taking commands.
            self._rebuild_registry(registry)
            publisher.publish(EventType.WORKER_STARTED, worker_subject(settings.worker_id),
                              health.snapshot("ready"), flush=True)
            log.info("worker %s ready; commands from %s", settings.worker_id,
                     settings.commands_topic)
            batches.resume(registry)
            stream.resume(registry)
            self._loop(consumer, publisher, handlers, health)
            publisher.publish(EventType.WORKER_STOPPING, worker_subject(settings.worker_id),
                              health.snapshot("stopping"), flush=True)
        log.info("worker stopped")
        return 0

    # ---- the command loop: poll, decode, dedupe, dispatch, publish, commit ----------

    def _loop(self, consumer: Consumer, publisher: EventPublisher, handlers: CommandHandlers,
              health: HealthReporter) -> None:
        next_heartbeat = time.monotonic() + self.settings.heartbeat_seconds
        last_activity = time.monotonic()
        cond = self.stop_conditions
        while not self.stop_flag.is_set():
            msg, self._held = (self._held, None) if self._held else (consumer.poll(0.25), None)
            now = time.monotonic()
            if now >= next_heartbeat:
                publisher.publish(EventType.WORKER_HEARTBEAT,
                                  worker_subject(self.settings.worker_id), health.snapshot())
                next_heartbeat = now + self.settings.heartbeat_seconds
            if msg is None:
                if cond.idle_timeout is not None and now - last_activity > cond.idle_timeout:
                    self.stop_flag.set("idle timeout")
                continue
            if msg.error():
                if msg.error().code() != KafkaError._PARTITION_EOF:
                    log.warning("command consumer: %s", msg.error())
                continue
            last_activity = now
            self._handle(msg, publisher, handlers)
            publisher.flush()  # the answer is durable before the command is marked done
            consumer.commit(message=msg, asynchronous=False)
            self.commands_handled += 1
            if cond.max_commands is not None and self.commands_handled >= cond.max_commands:
                self.stop_flag.set("max_commands reached")

    def _handle(self, msg: Message, publisher: EventPublisher, handlers: CommandHandlers) -> None:
        registry = publisher.registry
        try:
            command = decode_command(msg.value(), max_bytes=self.settings.max_command_bytes)
        except ContractError as exc:
            self._reject(publisher, exc.command_id, exc.code, exc.message, msg, None)
            return
        previous = registry.commands.get(command.command_id)
        if previous is not None:
            # Same command_id again: never executed twice, answered with the original outcome.
            publisher.publish(previous.event_type, command_subject(command.command_id),
                              {**previous.data, "duplicate": True},
                              command_id=command.command_id)
            return
        try:
            accepted, then = handlers.dispatch(command)
        except CommandRefused as exc:
            self._reject(publisher, command.command_id, exc.code, exc.message, msg, command.type)
            return
        except Exception as exc:
            log.exception("command %s failed", command.command_id)
            self._reject(publisher, command.command_id, ErrorCode.INTERNAL_ERROR,
                         f"{type(exc).__name__}: {exc}", msg, command.type)
            return
        publisher.publish(EventType.COMMAND_ACCEPTED, command_subject(command.command_id),
                          accepted, command_id=command.command_id)
        if then is not None:
            then()  # entity events (batch.pending, ...) follow the command's answer

    def _reject(self, publisher: EventPublisher, command_id: str | None, code: ErrorCode,
                message: str, msg: Message, command_type: str | None) -> None:
        log.info("rejected command %s: %s %s", command_id, code, message)
        # A compacted topic needs a key: unidentifiable commands are keyed by their offset.
        subject = command_subject(
            command_id or f"@{msg.topic()}-{msg.partition()}-{msg.offset()}"
        )
        data = CommandRejectedData(code=code, message=message, command_type=command_type,
                                   topic=msg.topic(), partition=msg.partition(),
                                   offset=msg.offset())
        publisher.publish(EventType.COMMAND_REJECTED, subject, data, command_id=command_id)

    # ---- start-up and stop steps ---------------------------------------------------------

    def _on_assign(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # The library applies the (incremental) assignment after this callback.
        if partitions:
            self._assigned.extend(partitions)

    def _on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        if self._assigned and partitions and not self.stop_flag.is_set():
            # Another worker owns the commands now; acting on would run work twice.
            log.warning("lost the commands partition to another worker: stopping")
            self.stop_flag.set("commands partition revoked")

    def _await_leadership(self, consumer: Consumer, publisher: EventPublisher,
                          health: HealthReporter) -> bool:
        """Hot standby: Spark is up, but work starts only once the consumer group gives
        this worker the commands partition (when the active worker stops or dies)."""
        announced = False
        next_beat = 0.0
        while not self.stop_flag.is_set():
            msg = consumer.poll(0.25)
            if msg is not None and not msg.error():
                # Read in the poll that brought the assignment: handled once the registry
                # is rebuilt, before anything else.
                self._held = msg
            if self._assigned:
                return True
            now = time.monotonic()
            # The first group join on a fresh broker is slow too; only a long wait means
            # another worker holds the partition.
            if now >= next_beat and (announced or now - self._standby_since > 15):
                if not announced:
                    log.info("no commands partition yet (another worker is probably "
                             "active): waiting as a hot standby")
                    announced = True
                publisher.publish(EventType.WORKER_HEARTBEAT,
                                  worker_subject(self.settings.worker_id),
                                  health.snapshot("standby"))
                next_beat = now + self.settings.heartbeat_seconds
        return False

    def _rebuild_registry(self, registry: Registry) -> Registry:
        started = time.monotonic()
        fold_events(read_events(self.settings, from_beginning=True), registry)
        log.info("registry rebuilt from %d events in %.2fs: %d batches", registry.events_seen,
                 time.monotonic() - started, len(registry.batches))
        return registry

    def _drain_batches(self, batches: BatchRunner) -> None:
        timeout = self.stop_flag.drain_timeout
        batches.shutdown(self.settings.drain_timeout_seconds if timeout is None else timeout)

    def _publish_stopped(self, publisher: EventPublisher, health: HealthReporter) -> None:
        publisher.publish(EventType.WORKER_STOPPED, worker_subject(self.settings.worker_id),
                          health.snapshot("stopped"), flush=True)

    @staticmethod
    def _stop_spark(spark: object) -> None:
        try:
            spark.stop()  # type: ignore[attr-defined]
        except Exception:  # Spark may already be gone; stopping is best effort.
            log.warning("Spark did not stop cleanly", exc_info=True)

