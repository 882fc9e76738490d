"""Who is the active worker: the owner of the commands topic's single partition.

The consumer group decides; this module follows its callbacks and answers the one hard
question, what a lost membership means. It is either a freeze or a cut-off (another
worker may be active now) or a broker outage (nobody is). The definitive answer is the
broker's: a worker that took over has fenced this one's event writer, so the next event
fails (the publisher then stands the worker down). If the partition comes back, this
worker carries on; if Kafka answers but the partition stays away, another member holds
it, and this worker stands down after a grace period.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable

from confluent_kafka import Consumer, KafkaException, TopicPartition

from contracts.settings import Settings

log = logging.getLogger(__name__)

CHECK_SECONDS = 2.0


class Leadership:
    def __init__(self, settings: Settings, stand_down: Callable[[str], None],
                 on_uncertain: Callable[[], None]) -> None:
        self.settings = settings
        self._stand_down = stand_down
        self._on_uncertain = on_uncertain  # e.g. write a heartbeat now, to probe the fence
        self.assigned: list[TopicPartition] = []
        self.lost = ""  # why this worker stood down; empty while it may act
        self._uncertain_since: float | None = None
        self._reachable_since: float | None = None
        self._next_check = 0.0
        self._keepalive: threading.Thread | None = None
        self._keepalive_stop = threading.Event()
        self._leaving = False

    # ---- consumer-group callbacks (called inside `consumer.poll`) -----------------------

    def on_assign(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # The library applies the (incremental) assignment after this callback.
        if partitions:
            self.assigned.extend(partitions)

    def on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        if self.assigned and partitions and not self._leaving:
            # The group moved the partition to another worker; acting on would run work
            # twice.
            self._stand_down("the commands partition was revoked")

    def on_lost(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        if self.assigned and partitions and not self.lost and not self._leaving:
            log.warning("the commands partition was lost (group membership expired): "
                        "checking whether another worker took over")
            self.assigned = []
            self._uncertain_since = time.monotonic()
            self._next_check = 0.0
            self._on_uncertain()

    # ---- while the membership is in doubt ------------------------------------------------

    @property
    def uncertain(self) -> bool:
        return self._uncertain_since is not None

    def check(self, last_commit: float | None) -> None:
        """Called from the command loop; `last_commit` is when the event writer last
        committed (monotonic), which tells that Kafka answers again."""
        now = time.monotonic()
        if self._uncertain_since is None or now < self._next_check:
            return
        if self.assigned:
            log.info("the commands partition is ours again; carrying on as the active worker")
            self._uncertain_since = self._reachable_since = None
            return
        self._next_check = now + CHECK_SECONDS
        if self._reachable_since is None:
            if last_commit is not None and last_commit > self._uncertain_since:
                self._reachable_since = now  # Kafka answers again: the group can settle
            return
        if now - self._reachable_since > max(30.0, 3 * self.settings.takeover_seconds):
            self._stand_down("the commands partition did not come back although Kafka "
                             "answers")

    # ---- shutdown ------------------------------------------------------------------------

    def hold(self, consumer: Consumer) -> None:
        """Stop taking commands but keep the partition (paused) and the group membership
        while the stream stops and batches drain, so no standby takes over (and re-runs
        the batches) meanwhile: a poller thread keeps the consumer alive past
        max.poll.interval.ms until `leave`."""
        if self.assigned:
            with contextlib.suppress(KafkaException):
                consumer.pause(list(self.assigned))
        self._keepalive_stop.clear()

        def keep_alive() -> None:
            while not self._keepalive_stop.is_set():
                with contextlib.suppress(Exception):
                    consumer.poll(0.5)

        self._keepalive = threading.Thread(target=keep_alive, name="commands-keepalive",
                                           daemon=True)
        self._keepalive.start()

    def leave(self, consumer: Consumer) -> None:
        self._leaving = True  # closing revokes the partition: that is no takeover
        self._keepalive_stop.set()
        if self._keepalive is not None:
            self._keepalive.join(5.0)
        consumer.close()
