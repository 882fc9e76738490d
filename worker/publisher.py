"""Publishes events through a Kafka transaction per flush, and keeps the in-memory
registry in step with what the broker has acknowledged.

Why transactions: every worker of a group shares one `transactional.id`. When a standby
becomes active, `init_transactions` fences the previous active worker's producer at the
broker, so a worker that was frozen (or cut off) and comes back can no longer write a
single event: the log cannot say two things at once.

Why an outbox: `publish` never blocks and never raises. Events wait, in order, until a
sender thread has committed them; a broker outage only makes them wait longer (health
reports it), and they are written in their original order once the broker is back. An
event is applied to the registry only after its transaction committed, so memory never
says what the log does not.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Producer
from pydantic import BaseModel

from contracts.event_signing import load_or_create_event_key
from contracts.events import Event, EventType, make_event
from contracts.kafka_clients import make_producer
from contracts.registry import Registry, apply_event, forget_command
from contracts.settings import Settings

log = logging.getLogger(__name__)

_MAX_EVENTS_PER_TRANSACTION = 500
_RETRY_PAUSE = 1.0


class PublishError(RuntimeError):
    """Events could not be written (the producer was fenced or failed fatally)."""


@dataclass(frozen=True)
class _Pending:
    seq: int
    key: bytes
    value: bytes | None  # None: a tombstone
    event: Event | None
    enqueued: float


class EventPublisher:
    def __init__(self, settings: Settings, registry: Registry,
                 on_fenced: Callable[[str], None] = lambda _reason: None) -> None:
        self._settings = settings
        self.registry = registry
        self._on_fenced = on_fenced
        # Every event carries the workers' MAC: the rebuild believes nothing else.
        self._auth = load_or_create_event_key(settings)
        self._cond = threading.Condition()
        self._outbox: deque[_Pending] = deque()
        self._next_seq = 1
        self._acked_seq = 0
        self._inflight: list[_Pending] = []
        self._producer: Producer | None = None
        self._plain: Producer | None = None
        self._sender: threading.Thread | None = None
        self._closing = False
        self._fenced: str | None = None
        self._last_error: str | None = None
        self.epoch: int | None = None
        self.last_commit: float | None = None  # monotonic time of the last committed batch

    # ---- life cycle --------------------------------------------------------------------

    def activate(self, epoch: int, should_stop: Callable[[], bool]) -> bool:
        """Become the group's one writer: fence any previous active worker, then start
        sending. Retries while the broker is away; False if asked to stop first."""
        conf = {
            "transactional.id": f"pipeline-{self._settings.consumer_group}-events",
            # Commits retried by us, never given up by the client: an outage only delays.
            "transaction.timeout.ms": 120_000,
            "linger.ms": 0,
        }
        producer = make_producer(self._settings, **conf)
        while True:
            try:
                producer.init_transactions(30)
                break
            except KafkaException as exc:
                err = exc.args[0]
                if err.fatal() or not err.retriable() or should_stop():
                    if should_stop():
                        return False
                    raise PublishError(f"cannot become the event writer: {err}") from None
                log.warning("event writer not ready yet (%s); retrying", err)
                time.sleep(_RETRY_PAUSE)
        self._producer = producer
        self.epoch = epoch
        self._sender = threading.Thread(target=self._send_loop, name="event-sender",
                                        daemon=True)
        self._sender.start()
        return True

    def close(self, timeout: float) -> bool:
        """Send what is queued (within `timeout`), then stop. True if nothing was left."""
        drained = self.wait_acked(timeout=timeout)
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        if self._sender is not None:
            self._sender.join(timeout=max(1.0, timeout))
        if self._plain is not None:
            self._plain.flush(min(timeout, 5.0))
        if not drained and not self._fenced:
            log.error("%d event(s) were not written before shutdown", self.backlog()[0])
        return drained

    # ---- publishing --------------------------------------------------------------------

    def publish(
        self,
        event_type: EventType,
        subject: str,
        data: BaseModel | dict[str, Any],
        *,
        command_id: str | None = None,
        flush: bool = False,
    ) -> Event:
        """Queue an event; with `flush`, wait (bounded) until the broker has it."""
        event = make_event(event_type, subject, self._settings.worker_id, data,
                           command_id=command_id, epoch=self.epoch)
        seq = self._enqueue(event.key, event.encode(), event)
        log.debug("queued %s %s", event.type, event.subject)
        if flush:
            self.wait_acked(seq, timeout=30.0)
        return event

    def publish_standby(self, event_type: EventType, subject: str, data: BaseModel) -> None:
        """A standby's heartbeat: outside any transaction (it must not fence the active
        worker) and outside the registry (a standby acts on nothing)."""
        if self._plain is None:
            self._plain = make_producer(self._settings)
        event = make_event(event_type, subject, self._settings.worker_id, data)
        try:
            value = event.encode()
            self._plain.produce(self._settings.events_topic, key=event.key, value=value,
                                headers=self._auth.headers(event.key, value))
            self._plain.poll(0)
        except (BufferError, KafkaException) as exc:
            log.warning("standby heartbeat not sent: %s", exc)

    def publish_tombstone(self, subject: str) -> int:
        """Queue a tombstone for `subject`: compaction then removes the key entirely."""
        return self._enqueue(subject.encode(), None, None)

    def _enqueue(self, key: bytes, value: bytes | None, event: Event | None) -> int:
        with self._cond:
            if self._fenced:
                log.warning("not publishing: %s", self._fenced)
                return self._next_seq - 1
            seq = self._next_seq
            self._next_seq += 1
            self._outbox.append(_Pending(seq, key, value, event, time.monotonic()))
            self._cond.notify_all()
            return seq

    def wait_acked(self, seq: int | None = None, timeout: float = 30.0) -> bool:
        """Block until every event up to `seq` (default: all so far) is committed."""
        deadline = time.monotonic() + timeout
        with self._cond:
            target = self._next_seq - 1 if seq is None else seq
            while self._acked_seq < target and not self._fenced:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(min(remaining, 0.5))
            return self._acked_seq >= target

    def backlog(self) -> tuple[int, float]:
        """(events not yet committed, age in seconds of the oldest of them)."""
        with self._cond:
            waiting = [*self._inflight, *self._outbox]
            if not waiting:
                return 0, 0.0
            return len(waiting), time.monotonic() - waiting[0].enqueued

    def problems(self) -> list[str]:
        """Why publishing is unhealthy right now (empty when it is fine)."""
        count, age = self.backlog()
        out = []
        if self._fenced:
            out.append(self._fenced)
        if count and age > 5.0:
            detail = f": {self._last_error}" if self._last_error else ""
            out.append(f"{count} event(s) waiting {age:.0f}s for Kafka{detail}")
        return out

    @property
    def fenced(self) -> bool:
        return self._fenced is not None

    # ---- the sender thread -------------------------------------------------------------

    def _send_loop(self) -> None:
        while True:
            with self._cond:
                while not self._outbox and not self._closing:
                    self._cond.wait(0.5)
                if not self._outbox and self._closing:
                    return
                batch = []
                while self._outbox and len(batch) < _MAX_EVENTS_PER_TRANSACTION:
                    batch.append(self._outbox.popleft())
                self._inflight = batch
            if not self._commit(batch):
                return  # fenced: nothing more may be written
            with self._cond:
                for item in batch:
                    self._apply(item)
                self._acked_seq = batch[-1].seq
                self.last_commit = time.monotonic()
                self._inflight = []
                self._last_error = None
                self._cond.notify_all()

    def _apply(self, item: _Pending) -> None:
        if item.event is not None:
            apply_event(self.registry, item.event)
        elif item.key.startswith(b"command/"):
            forget_command(self.registry, item.key.decode()[len("command/"):])

    def _commit(self, batch: list[_Pending]) -> bool:
        """Write `batch` in one transaction, retrying through outages. False if fenced."""
        producer = self._producer
        assert producer is not None
        produced = False
        while True:
            try:
                if not produced:
                    producer.begin_transaction()
                    for item in batch:
                        headers = (self._auth.headers(item.key, item.value)
                                   if item.value is not None else None)
                        producer.produce(self._settings.events_topic, key=item.key,
                                         value=item.value, headers=headers)
                    produced = True
                producer.commit_transaction(10)
                return True
            except KafkaException as exc:
                err: KafkaError = exc.args[0]
                self._last_error = err.str()
                if err.fatal() or err.code() in (KafkaError._FENCED,
                                                 KafkaError.PRODUCER_FENCED,
                                                 KafkaError.INVALID_PRODUCER_EPOCH):
                    self._fence(f"event writer fenced or failed: {err.str()}")
                    return False
                if err.txn_requires_abort():
                    log.warning("event transaction aborted (%s); writing it again", err.str())
                    self._abort(producer)
                    produced = False
                elif not err.retriable():
                    log.error("event transaction failed (%s); writing it again", err.str())
                    self._abort(producer)
                    produced = False
                else:
                    log.warning("events not acknowledged yet (%s); retrying", err.str())
                time.sleep(_RETRY_PAUSE)
            except BufferError:
                time.sleep(_RETRY_PAUSE)

    def _abort(self, producer: Producer) -> None:
        try:
            producer.abort_transaction(10)
        except KafkaException as exc:
            log.warning("abort of the event transaction: %s", exc.args[0].str())

    def silence(self, reason: str) -> None:
        """Write nothing more (leadership lost before the broker fenced us)."""
        with self._cond:
            if self._fenced:
                return
            self._fenced = reason
            self._outbox.clear()
            self._cond.notify_all()

    def _fence(self, reason: str) -> None:
        log.error("%s: this worker may no longer write events", reason)
        with self._cond:
            self._fenced = reason
            self._outbox.clear()
            self._inflight = []
            self._cond.notify_all()
        self._on_fenced(reason)
