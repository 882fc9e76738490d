"""Faults a worker must live through: the broker going away for a minute, and the active
worker freezing while a standby takes over. Nothing lost, nothing twice, every batch ends."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from contracts.events import Event, EventType
from contracts.kafka_clients import end_offsets, make_consumer
from devkit import broker
from producers.generator import TransactionGenerator
from tests.conftest import _free_port
from tests.e2e.conftest import WorkerProcess, make_worker, twin
from tests.e2e.delta_reads import count, produce, table, wait_until
from worker.storage import StoragePaths

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]


def records(prefix: str, valid: int, invalid: int) -> list[tuple[str | None, bytes]]:
    gen = TransactionGenerator(seed=7)
    out: list[tuple[str | None, bytes]] = []
    for i in range(valid):
        event = gen.event()
        event["transaction_id"] = f"{prefix}-{i}"
        out.append((event["transaction_id"], orjson.dumps(event)))
    out.extend((None, b"not json " + str(i).encode()) for i in range(invalid))
    return out


def exact_transactions(worker: WorkerProcess, expected_ids: set[str]) -> None:
    df = table(StoragePaths(worker.settings).transactions)
    assert df is not None
    assert df["transaction_id"].is_unique, "a transaction was written twice"
    assert set(df["transaction_id"]) == expected_ids


def kafka_range(worker: WorkerProcess) -> dict:
    consumer = make_consumer(worker.settings)
    try:
        ends = end_offsets(consumer, worker.settings.stream_topic)
    finally:
        consumer.close()
    return {"kind": "kafka", "topic": worker.settings.stream_topic, "start_offset": "earliest",
            "end_offset": {str(p): o for p, o in ends.items()}}


def terminal(event: Event, batch_id: str) -> bool:
    return event.subject == f"batch/{batch_id}" and event.type in (
        EventType.BATCH_COMPLETED, EventType.BATCH_FAILED, EventType.BATCH_CANCELLED)


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A broker of this test alone: it is stopped and started again mid-test."""
    bootstrap = f"127.0.0.1:{_free_port()}"
    data_dir = tmp_path / "own-broker"
    broker.start(bootstrap, data_dir, timeout=120)
    try:
        yield bootstrap, data_dir
    finally:
        broker.stop(data_dir)


def test_a_broker_outage_is_survived(own_broker: tuple[str, Path], tmp_path: Path) -> None:
    bootstrap, broker_dir = own_broker
    worker = make_worker(bootstrap, tmp_path / "w")
    (tmp_path / "w").mkdir(exist_ok=True)
    ready = worker.start()
    assert ready is not None
    try:
        first = records("before", 1500, 15)
        produce(worker.settings, worker.settings.stream_topic, first)
        worker.send("start_stream", {"starting_offsets": "earliest"})
        p = StoragePaths(worker.settings)
        wait_until(lambda: count(p.transactions) == 1500, 240, "the first records")
        batch_id = "during-outage"
        worker.send("run_batch", {"batch_id": batch_id, "analysis_type": "full_report",
                                  "source": kafka_range(worker)})
        assert worker.wait_for(lambda e: e.subject == f"batch/{batch_id}", 60) is not None

        broker.stop(broker_dir)
        outage_started = time.time()
        time.sleep(60)
        assert worker.proc is not None and worker.proc.poll() is None, \
            f"the worker died with the broker:\n{worker.log_tail()}"
        broker.start(bootstrap, broker_dir, timeout=120)

        second = records("after", 1000, 10)
        produce(worker.settings, worker.settings.stream_topic, second)
        wait_until(lambda: count(p.transactions) == 2500, 300,
                   "the stream to resume and ingest what came after the outage")
        exact_transactions(worker, {k for k, _ in first + second if k})
        wait_until(lambda: count(p.quarantine) == 25, 120, "quarantine")
        assert not table(p.quarantine).duplicated(["partition", "offset"]).any()

        end = worker.wait_for(lambda e: terminal(e, batch_id), 300)
        assert end is not None, worker.log_tail()
        assert end.type is EventType.BATCH_COMPLETED, end.data
        assert end.data["row_count"] == 1500

        events = worker.events()
        mine = [e for e in events if e.worker_id == ready.worker_id]
        beats = [e for e in mine if e.type is EventType.WORKER_HEARTBEAT
                 and e.occurred_at.timestamp() > outage_started + 5
                 and e.occurred_at.timestamp() < outage_started + 55]
        # Heartbeats made while the broker was away arrive afterwards, degraded, in order.
        assert beats, "no heartbeat from the outage reached the log"
        assert any(b.data["status"] == "degraded" for b in beats), [b.data for b in beats]
        uptimes = [e.data["uptime_seconds"] for e in mine
                   if e.type is EventType.WORKER_HEARTBEAT]
        assert uptimes == sorted(uptimes)
        ping = worker.send("ping")
        assert worker.answer_to(ping).type is EventType.COMMAND_ACCEPTED
    finally:
        worker.discard()


def test_a_frozen_active_worker_stands_down_after_a_takeover(
        kafka_bootstrap: str, tmp_path: Path) -> None:
    active = make_worker(kafka_bootstrap, tmp_path / "a")
    (tmp_path / "a").mkdir(exist_ok=True)
    active.env["PIPELINE_TAKEOVER_SECONDS"] = "6"
    standby = twin(active, tmp_path / "standby.log")
    first_ready = active.start()
    assert first_ready is not None
    standby.start(wait_ready=False)
    try:
        first = records("frozen", 3000, 30)
        produce(active.settings, active.settings.stream_topic, first)
        active.send("start_stream", {"starting_offsets": "earliest"})
        p = StoragePaths(active.settings)
        wait_until(lambda: count(p.transactions) > 0, 240, "the stream to start writing")
        batch_id = "across-takeover"
        active.send("run_batch", {"batch_id": batch_id, "analysis_type": "full_report",
                                  "source": kafka_range(active)})
        assert active.wait_for(lambda e: e.type is EventType.BATCH_RUNNING
                               and e.subject == f"batch/{batch_id}", 120) is not None
        assert active.proc is not None
        os.kill(active.proc.pid, signal.SIGSTOP)
        frozen_at = len(active.events())
        try:
            started = standby.wait_for(
                lambda e: e.type is EventType.WORKER_STARTED
                and e.worker_id != first_ready.worker_id, 120, after=frozen_at)
            assert started is not None, standby.log_tail()
            new_epoch = started.epoch
            assert new_epoch is not None and new_epoch >= 2
        finally:
            os.kill(active.proc.pid, signal.SIGCONT)
        # The old worker notices it lost the group, stops all work and exits.
        assert active.proc.wait(90) == 75, active.log_tail()

        second = records("thawed", 500, 5)
        produce(active.settings, active.settings.stream_topic, second)
        wait_until(lambda: count(p.transactions) == 3500, 300, "all records, once")
        exact_transactions(active, {k for k, _ in first + second if k})
        wait_until(lambda: count(p.quarantine) == 35, 120, "quarantine")
        assert not table(p.quarantine).duplicated(["partition", "offset"]).any()

        end = standby.wait_for(lambda e: terminal(e, batch_id), 300)
        assert end is not None and end.type is EventType.BATCH_COMPLETED, standby.log_tail()
        code, status = standby.cli_json("batch", "status", batch_id)
        assert code == 0 and status["status"] == "completed", status
        assert status["row_count"] == 3000
        raw = table(Path(status["raw"]["path"]))
        assert raw is not None and len(raw) == 3000 and raw["transaction_id"].is_unique

        # Nothing of the old epoch was written once the new one began.
        events = standby.events()
        begin = next(i for i, e in enumerate(events) if e.event_id == started.event_id)
        stale = [e for e in events[begin:] if e.epoch is not None and e.epoch < new_epoch]
        assert not stale, [(e.type, e.worker_id) for e in stale]
    finally:
        standby.discard()
        active.discard()


def test_a_dlq_that_refuses_a_record_does_not_wedge_the_stream(
        kafka_bootstrap: str, tmp_path: Path) -> None:
    """A quarantined record too large for the DLQ topic: the stream moves on, quarantine
    keeps it byte for byte, the other dead letters still reach the DLQ."""
    from confluent_kafka.admin import AdminClient, ConfigResource

    from tests.e2e.delta_reads import consume_all

    worker = make_worker(kafka_bootstrap, tmp_path / "d")
    (tmp_path / "d").mkdir(exist_ok=True)
    admin = AdminClient(worker.settings.kafka_client_config())
    resource = ConfigResource("topic", worker.settings.dlq_topic,
                              set_config={"max.message.bytes": "2000"})
    for future in admin.alter_configs([resource]).values():
        future.result(30)
    worker.start()
    try:
        # Not JSON, incompressible, and ten times what the DLQ takes.
        big = b"{" + os.urandom(20_000)
        batch = [*records("dlq", 200, 0), (None, big), (None, b"small garbage")]
        produce(worker.settings, worker.settings.stream_topic, batch)
        worker.send("start_stream", {"starting_offsets": "earliest"})
        p = StoragePaths(worker.settings)
        wait_until(lambda: count(p.transactions) == 200 and count(p.quarantine) == 2, 240,
                   "valid rows and quarantine")
        quarantined = table(p.quarantine)
        assert sorted(quarantined["raw_value"].map(len)) == [len(b"small garbage"), len(big)]
        # The retry sends what it can, record by record, and gives up only the big one.
        wait_until(lambda: any(m.value() == b"small garbage"
                               for m in consume_all(worker.settings,
                                                    worker.settings.dlq_topic)),
                   120, "the small dead letter in the DLQ")
        assert not any(m.value() == big
                       for m in consume_all(worker.settings, worker.settings.dlq_topic))
        more = records("after-dlq", 100, 0)
        produce(worker.settings, worker.settings.stream_topic, more)
        wait_until(lambda: count(p.transactions) == 300, 120, "the stream to move on")
        exact_transactions(worker, {k for k, _ in batch + more if k})
    finally:
        worker.discard()
