"""The Kafka stream generator (and the seeder's Kafka option) against a real broker.

Uses the broker at PIPELINE_KAFKA_BOOTSTRAP when set and reachable; otherwise starts one
with devkit.broker (if that launcher exists) on a free port; otherwise the broker tests skip.
The no-broker failure paths always run.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient

from contracts.errors import ContractError
from contracts.settings import Settings
from contracts.transaction import TransactionEvent
from producers.kafka_generate import (
    DeliveryError,
    ensure_topic,
    finish,
    generate_to_kafka,
    make_tracked_producer,
    produce,
)
from producers.seeder import seed_history


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _reachable(bootstrap: str) -> bool:
    try:
        AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=5)
    except Exception:
        return False
    return True


@pytest.fixture(scope="module")
def bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    configured = os.environ.get("PIPELINE_KAFKA_BOOTSTRAP")
    if configured:
        if not _reachable(configured):
            pytest.skip(f"PIPELINE_KAFKA_BOOTSTRAP={configured} is not reachable")
        yield configured
        return
    try:
        from devkit import broker
    except ImportError:
        pytest.skip("no PIPELINE_KAFKA_BOOTSTRAP and no devkit.broker launcher")
    if not (hasattr(broker, "start") and hasattr(broker, "stop")):
        pytest.skip("devkit.broker has no start/stop")
    address = f"localhost:{_free_port()}"  # never 9092: a developer's broker may be there
    data_dir = tmp_path_factory.mktemp("kafka")
    try:
        broker.start(address, data_dir)
    except Exception as exc:
        pytest.skip(f"devkit.broker could not start a broker: {exc}")
    try:
        yield address
    finally:
        broker.stop(data_dir)


@pytest.fixture
def settings(bootstrap: str, tmp_path: Path) -> Settings:
    # A topic of our own per test: shared brokers may hold other runs' records.
    return Settings(kafka_bootstrap=bootstrap, data_dir=tmp_path,
                    stream_topic=f"test-stream-{uuid.uuid4().hex[:8]}",
                    batch_topic=f"test-batch-{uuid.uuid4().hex[:8]}")


def _consume_all(settings: Settings, topic: str, expected: int,
                 timeout: float = 60.0) -> list[tuple[bytes, bytes]]:
    consumer = Consumer({**settings.kafka_client_config(), "group.id": uuid.uuid4().hex,
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic])
    records: list[tuple[bytes, bytes]] = []
    deadline = time.monotonic() + timeout
    try:
        while len(records) < expected and time.monotonic() < deadline:
            for msg in consumer.consume(1000, timeout=1.0):
                if msg.error() is None:
                    records.append((msg.key(), msg.value()))
        # a little longer, to catch anything beyond what was expected
        for msg in consumer.consume(1000, timeout=1.0):
            if msg.error() is None:
                records.append((msg.key(), msg.value()))
    finally:
        consumer.close()
    return records


@pytest.mark.integration
def test_generate_round_trip_with_invalid_records(settings: Settings) -> None:
    summary = generate_to_kafka(settings, rate=None, count=3000, invalid_rate=0.1, seed=3,
                                progress=False)
    assert summary.topic == settings.stream_topic
    assert summary.valid + summary.invalid == 3000
    assert 200 < summary.invalid < 400
    records = _consume_all(settings, settings.stream_topic, 3000)
    assert len(records) == 3000
    valid = 0
    for key, value in records:
        try:
            event = TransactionEvent.decode(value)
        except ContractError:
            continue
        assert key.decode() == event.transaction_id  # keyed for per-transaction ordering
        valid += 1
    assert valid == summary.valid
    # the topic was created from the worker's spec for the stream topic
    meta = AdminClient(settings.kafka_client_config()).list_topics(timeout=10)
    assert len(meta.topics[settings.stream_topic].partitions) == settings.stream_partitions


@pytest.mark.integration
def test_generate_holds_the_rate(settings: Settings) -> None:
    summary = generate_to_kafka(settings, rate=400, count=800, seed=1, progress=False)
    assert summary.valid == 800
    assert 1.6 < summary.seconds < 4.0  # 2 s at 400/s (+ topic creation and flush)


@pytest.mark.integration
def test_generate_until_stopped(settings: Settings) -> None:
    stop = threading.Event()
    threading.Timer(1.0, stop.set).start()
    summary = generate_to_kafka(settings, rate=200, count=None, seed=2, progress=False,
                                stop=stop)
    assert 100 <= summary.valid <= 300
    assert len(_consume_all(settings, settings.stream_topic, summary.valid)) == summary.valid


@pytest.mark.integration
def test_generate_flat_out_with_progress(settings: Settings,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    summary = generate_to_kafka(settings, rate=0, count=20_000, seed=4, progress=True)
    assert summary.valid == 20_000
    assert summary.rate > 2_000  # sanity only; measured throughput is in the report
    assert capsys.readouterr().out == ""  # progress goes to stderr, stdout stays clean


@pytest.mark.integration
def test_seeder_also_feeds_kafka(settings: Settings) -> None:
    summary = seed_history(settings, records=1500, days=7, kafka_topic=settings.batch_topic,
                           seed=8, progress=False)
    assert summary.kafka_topic == settings.batch_topic
    records = _consume_all(settings, settings.batch_topic, 1500)
    assert len(records) == 1500
    for key, value in records:
        event = TransactionEvent.decode(value)
        assert key.decode() == event.transaction_id
        assert event.processing_timestamp is None  # set only when written to Delta


# ------------------------------------------------------------------------------ no broker


def _dead_settings(tmp_path: Path) -> Settings:
    return Settings(kafka_bootstrap=f"127.0.0.1:{_free_port()}", data_dir=tmp_path)


def test_unreachable_broker_fails_fast(tmp_path: Path) -> None:
    with pytest.raises(ConnectionError, match="unreachable"):
        ensure_topic(_dead_settings(tmp_path), "anything", timeout=2)


def test_undelivered_records_raise(tmp_path: Path) -> None:
    producer, tracker = make_tracked_producer(_dead_settings(tmp_path),
                                              **{"message.timeout.ms": 500})
    event: dict[str, Any] = {"transaction_id": "t-1"}
    for _ in range(3):
        produce(producer, "anything", "t-1", orjson.dumps(event))
    with pytest.raises(DeliveryError) as info:
        finish(producer, tracker, timeout=10)
    assert info.value.failed == 3


def test_argument_checks(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="invalid_rate"):
        generate_to_kafka(_dead_settings(tmp_path), invalid_rate=2.0)
