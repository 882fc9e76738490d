"""The worker: one long-lived Spark driver answering commands from Kafka.

Stop order (written down because it matters, see `Worker.run`):
  1. stop taking commands (the loop ends; uncommitted commands stay for the next worker);
  2. stop the stream at a micro-batch boundary;
  3. let running batches finish within the drain timeout, cancel the rest (they re-run
     on the next start);
  4. publish `worker.stopped` and write every queued event (bounded);
  5. stop Spark.
A worker that loses leadership (its commands partition, or its event writer fenced by a
newer active worker) does the same at once, with no drain and without writing events:
nothing it would still do could count.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from contracts.commands import decode_command
from contracts.errors import ContractError, ErrorCode
from contracts.events import (
    CommandRejectedData,
    EventType,
    command_subject,
    worker_subject,
)
from contracts.kafka_clients import (
    ensure_topics,
    make_consumer,
)
from contracts.registry import Registry
from contracts.settings import Settings
from worker.batch_runner import BatchRunner
from worker.data_plane import build_data_plane
from worker.errors import CommandRefused
from worker.event_log import expire_command_answers, rebuild_registry
from worker.handlers import CommandHandlers
from worker.health import HealthReporter
from worker.leadership import Leadership
from worker.publisher import EventPublisher
from worker.quality.expectations import InvalidExpectations, load_expectations
from worker.scheduler import Scheduler
from worker.signals import StopFlag, install_signal_handlers
from worker.spark_session import SparkStarter
from worker.stream_manager import StreamManager

log = logging.getLogger(__name__)

# Exit code of a worker that stood down because another worker became active: a
# supervisor may start it again, as a standby.
EXIT_LEADERSHIP_LOST = 75
# Exit code of a worker whose configuration cannot be used (the expectations file).
EXIT_CONFIG = 2
SPARK_STOP_SECONDS = 20.0


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
        self.leadership = Leadership(settings, stand_down=self._stand_down,
                                     on_uncertain=self._beat_now)
        self._held: Message | None = None
        self._uncommitted: Message | None = None
        self._standby_since = time.monotonic()
        self._next_heartbeat = 0.0
        self._stream: StreamManager | None = None
        self._publisher: EventPublisher | None = None
        self._batches: BatchRunner | None = None
        self._next_expiry = 0.0

    def run(self, *, handle_signals: bool = True) -> int:
        if handle_signals:
            install_signal_handlers(self.stop_flag)
        settings = self.settings
        try:
            # Checked before anything starts: a bad file is a clear error, not a surprise
            # at the first micro-batch.
            expectations = load_expectations(settings.expectations)
        except InvalidExpectations as exc:
            log.error("%s", exc)
            return EXIT_CONFIG
        with ExitStack() as stack:
            created = ensure_topics(settings)
            if created:
                log.info("created topics: %s", ", ".join(created))
            # Filled once this worker is the active one (see _await_leadership).
            registry = Registry()
            publisher = self._publisher = EventPublisher(settings, registry,
                                                         on_fenced=self._stand_down)
            health = HealthReporter(settings, registry)
            health.problem_sources.append(publisher.problems)

            # Spark starts beside the group join and the registry rebuild, not before
            # them: a restart costs the longer of the two, not their sum.
            log.info("starting Spark (%s)", settings.spark_master)
            spark_start = SparkStarter(settings)
            stack.callback(self._stop_spark, spark_start)                  # 6.
            consumer = make_consumer(
                settings, group_id=settings.consumer_group,
                **{"enable.partition.eof": False,
                   # Sticky: a joining standby must not take the partition from a healthy
                   # active worker (an eager rebalance may hand it to the newcomer).
                   "partition.assignment.strategy": "cooperative-sticky",
                   # A dead or frozen active worker is noticed within this, and a standby
                   # takes over.
                   "session.timeout.ms": int(settings.takeover_seconds * 1000),
                   "heartbeat.interval.ms": max(500, int(settings.takeover_seconds * 200)),
                   # A live worker whose command loop stalls loses the partition after
                   # this (librdkafka's default is 5 minutes of double leadership).
                   "max.poll.interval.ms": int(settings.max_poll_interval_seconds * 1000)},
            )
            # Leaving the group comes last: no standby takes over while this worker
            # still drains, so no batch runs on two workers at once.
            stack.callback(self.leadership.leave, consumer)               # 5.
            stack.callback(self._publish_stopped, publisher, health)      # 4.
            lead = self.leadership
            consumer.subscribe([settings.commands_topic], on_assign=lead.on_assign,
                               on_revoke=lead.on_revoke, on_lost=lead.on_lost)
            if not self._await_leadership(consumer, publisher, health, spark_start):
                return self._exit_code()
            # Active now. Fence the previous writer first, then read the log to its end:
            # nothing a stale worker writes can land after what we read.
            if not publisher.activate(0, self.stop_flag.is_set):
                return self._exit_code()
            if not rebuild_registry(settings, registry, publisher, health, self.stop_flag):
                return self._exit_code()
            spark = health.spark = spark_start.result()
            try:
                plane = build_data_plane(spark, settings, publisher, health, expectations)
            except InvalidExpectations as exc:
                log.error("%s", exc)
                return EXIT_CONFIG
            batches = self._batches = plane.batches
            stack.callback(self._drain_batches, batches)                  # 3.
            stack.callback(plane.backfills.shutdown, 0.0)                 # 3.
            stream = self._stream = plane.stream
            health.problem_sources.append(stream.problems)
            stack.callback(self._stop_stream, stream)                     # 2.
            stack.callback(self.leadership.hold, consumer)                # 1.
            scheduler = Scheduler(settings, publisher, batches)
            stack.callback(scheduler.shutdown)                            # 1.
            handlers = CommandHandlers(settings, publisher, health, stream, batches,
                                       plane.backfills, self.stop_flag, scheduler)
            epoch = registry.epoch + 1
            publisher.epoch = health.epoch = epoch
            publisher.publish(EventType.WORKER_STARTED, worker_subject(settings.worker_id),
                              health.snapshot("ready"), flush=True)
            log.info("worker %s ready (epoch %d); commands from %s", settings.worker_id,
                     epoch, settings.commands_topic)
            batches.resume(registry)
            plane.backfills.resume(registry)
            stream.resume(registry)
            scheduler.resume(registry)
            self._loop(consumer, publisher, handlers, health)
            if not self.leadership.lost:
                publisher.publish(EventType.WORKER_STOPPING, worker_subject(settings.worker_id),
                                  health.snapshot("stopping"), flush=True)
        log.info("worker stopped")
        if self._batches is not None and self._batches.stuck:
            # A batch thread stuck outside Spark's reach would keep the interpreter from
            # exiting (the pool's threads are joined at exit): the shutdown bound wins.
            log.warning("exiting without waiting for stuck batch thread(s): %s",
                        ", ".join(self._batches.stuck))
            logging.shutdown()
            os._exit(self._exit_code())
        return self._exit_code()

    def _exit_code(self) -> int:
        return EXIT_LEADERSHIP_LOST if self.leadership.lost else 0

    def _beat_now(self) -> None:
        self._next_heartbeat = 0.0

    # ---- the command loop: poll, decode, dedupe, dispatch, publish, commit ----------

    def _loop(self, consumer: Consumer, publisher: EventPublisher, handlers: CommandHandlers,
              health: HealthReporter) -> None:
        self._next_heartbeat = time.monotonic() + self.settings.heartbeat_seconds
        last_activity = time.monotonic()
        cond = self.stop_conditions
        while not self.stop_flag.is_set():
            msg, self._held = (self._held, None) if self._held else (consumer.poll(0.25), None)
            now = time.monotonic()
            self._periodic(publisher, health, now)
            self.leadership.check(publisher.last_commit)
            if msg is None:
                if self._uncommitted is not None:
                    self._commit(consumer, self._uncommitted)
                if cond.idle_timeout is not None and now - last_activity > cond.idle_timeout:
                    self.stop_flag.set("idle timeout")
                continue
            if msg.error():
                if msg.error().code() != KafkaError._PARTITION_EOF:
                    log.warning("command consumer: %s", msg.error())
                continue
            if self.leadership.lost or self.leadership.uncertain:
                # Fetched before the doubt began: redelivered to whoever is active.
                continue
            last_activity = now
            self._handle(msg, publisher, handlers)
            # The answer is durable before the command is marked done.
            self._await_answer(consumer, msg, publisher, health)
            if self.leadership.lost:
                break
            self._commit(consumer, msg)
            self.commands_handled += 1
            if cond.max_commands is not None and self.commands_handled >= cond.max_commands:
                self.stop_flag.set("max_commands reached")

    def _periodic(self, publisher: EventPublisher, health: HealthReporter, now: float) -> None:
        if now >= self._next_heartbeat:
            publisher.publish(EventType.WORKER_HEARTBEAT,
                              worker_subject(self.settings.worker_id), health.snapshot())
            self._next_heartbeat = now + self.settings.heartbeat_seconds
        if now >= self._next_expiry:
            expire_command_answers(self.settings, publisher)
            self._next_expiry = now + 600

    def _await_answer(self, consumer: Consumer, msg: Message, publisher: EventPublisher,
                      health: HealthReporter) -> None:
        """Wait until Kafka has the command's answer. While the broker is away, the
        partition is paused (nothing new is taken) and the consumer keeps polling, so the
        worker keeps its group membership and its heartbeats queue up in order."""
        if publisher.wait_acked(timeout=2.0):
            return
        partition = [TopicPartition(msg.topic(), msg.partition())]
        log.warning("the answer to command at offset %d is not acknowledged yet: holding "
                    "further commands until Kafka has it", msg.offset())
        consumer.pause(partition)
        try:
            while not publisher.wait_acked(timeout=0.5):
                if self.stop_flag.is_set() or publisher.fenced or self.leadership.lost:
                    return
                consumer.poll(0)
                self._periodic(publisher, health, time.monotonic())
                self.leadership.check(publisher.last_commit)
        finally:
            # Anything fetched while paused is fetched again from the next offset.
            if not self.leadership.lost and self.leadership.assigned:
                try:
                    consumer.resume(partition)
                except KafkaException as exc:
                    log.warning("resume after pause: %s", exc)
                self._seek(consumer, msg)
        log.info("Kafka has the answer again; taking commands")

    @staticmethod
    def _seek(consumer: Consumer, msg: Message) -> None:
        try:
            consumer.seek(TopicPartition(msg.topic(), msg.partition(), msg.offset() + 1))
        except KafkaException as exc:
            log.warning("seek after pause: %s", exc)

    def _commit(self, consumer: Consumer, msg: Message) -> None:
        """Commit the command's offset; a failure (broker away) is retried later, and a
        redelivered command is answered from the registry, not executed twice."""
        try:
            consumer.commit(offsets=[TopicPartition(msg.topic(), msg.partition(),
                                                    msg.offset() + 1)], asynchronous=False)
            self._uncommitted = None
        except KafkaException as exc:
            if self._uncommitted is None:
                log.warning("command offset %d not committed yet (%s); retrying",
                            msg.offset(), exc.args[0].str())
            self._uncommitted = msg

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
            self._reject(publisher, command.command_id, exc.code, exc.message, msg, command.type,
                         retryable=exc.retryable)
            return
        except Exception as exc:
            log.exception("command %s failed", command.command_id)
            # Not a verdict on the command: the same command_id may be tried again.
            self._reject(publisher, command.command_id, ErrorCode.INTERNAL_ERROR,
                         f"{type(exc).__name__}: {exc}", msg, command.type, retryable=True)
            return
        publisher.publish(EventType.COMMAND_ACCEPTED, command_subject(command.command_id),
                          accepted, command_id=command.command_id)
        if then is not None:
            then()  # entity events (batch.pending, ...) follow the command's answer

    def _reject(self, publisher: EventPublisher, command_id: str | None, code: ErrorCode,
                message: str, msg: Message, command_type: str | None, *,
                retryable: bool = False) -> None:
        log.info("rejected command %s: %s %s", command_id, code, message)
        # A compacted topic needs a key: unidentifiable commands are keyed by their offset.
        subject = command_subject(
            command_id or f"@{msg.topic()}-{msg.partition()}-{msg.offset()}"
        )
        data = CommandRejectedData(code=code, message=message, command_type=command_type,
                                   retryable=retryable, topic=msg.topic(),
                                   partition=msg.partition(), offset=msg.offset())
        publisher.publish(EventType.COMMAND_REJECTED, subject, data, command_id=command_id)

    # ---- start-up and stop steps ---------------------------------------------------------

    def _stand_down(self, reason: str) -> None:
        """Leadership is gone: stop every piece of work now, without draining, and write
        nothing more (the new active worker re-runs what is unfinished)."""
        if self.leadership.lost:
            return
        log.warning("%s: standing down at once", reason)
        self.leadership.lost = reason
        if self._publisher is not None:
            self._publisher.silence(reason)
        if self._batches is not None:
            self._batches.abandon()
        if self._stream is not None:
            self._stream.abandon()
        self.stop_flag.set(reason, 0.0)

    def _await_leadership(self, consumer: Consumer, publisher: EventPublisher,
                          health: HealthReporter, spark_start: SparkStarter) -> bool:
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
            if self.leadership.assigned:
                return True
            if health.spark is None and spark_start.done():
                health.spark = spark_start.result()  # a hot standby: Spark is up
            now = time.monotonic()
            # The first group join on a fresh broker is slow too; only a long wait means
            # another worker holds the partition.
            if now >= next_beat and (announced or now - self._standby_since > 15):
                if not announced:
                    log.info("no commands partition yet (another worker is probably "
                             "active): waiting as a hot standby")
                    announced = True
                publisher.publish_standby(EventType.WORKER_HEARTBEAT,
                                          worker_subject(self.settings.worker_id),
                                          health.snapshot("standby"))
                next_beat = now + self.settings.heartbeat_seconds
        return False

    def _stop_stream(self, stream: StreamManager) -> None:
        stream.shutdown(timeout=0.0 if self.leadership.lost else 60.0)

    def _drain_batches(self, batches: BatchRunner) -> None:
        timeout = self.stop_flag.drain_timeout
        batches.shutdown(self.settings.drain_timeout_seconds if timeout is None else timeout)

    def _publish_stopped(self, publisher: EventPublisher, health: HealthReporter) -> None:
        if self.leadership.lost or publisher.epoch is None:
            publisher.close(timeout=0.0)
            return
        publisher.publish(EventType.WORKER_STOPPED, worker_subject(self.settings.worker_id),
                          health.snapshot("stopped"))
        # Bounded: with the broker gone for good, the worker still exits.
        publisher.close(timeout=self.settings.shutdown_publish_seconds)

    @staticmethod
    def _stop_spark(spark_start: SparkStarter) -> None:
        def stop() -> None:
            try:
                spark_start.result().stop()
            except Exception:  # Spark may already be gone; stopping is best effort.
                log.warning("Spark did not stop cleanly", exc_info=True)

        # Bounded, like the rest of the shutdown: a job stuck in the JVM must not hold
        # the process (the JVM ends with its parent).
        stopper = threading.Thread(target=stop, name="spark-stop", daemon=True)
        stopper.start()
        stopper.join(SPARK_STOP_SECONDS)
        if stopper.is_alive():
            log.warning("Spark did not stop within %.0fs; exiting anyway", SPARK_STOP_SECONDS)
