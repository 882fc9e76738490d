"""Reading the worker's Delta tables and topics from tests, independently of the worker."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
from confluent_kafka import KafkaError, TopicPartition
from deltalake import DeltaTable

from contracts.kafka_clients import end_offsets, make_consumer, make_producer
from contracts.settings import Settings


def table(path: Path) -> pd.DataFrame | None:
    try:
        return DeltaTable(str(path)).to_pandas()
    except Exception:  # not created yet
        return None


def count(path: Path) -> int:
    df = table(path)
    return 0 if df is None else len(df)


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(1.0)
    raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")


def produce(settings: Settings, topic: str, records: list[tuple[str | None, bytes]]) -> None:
    producer = make_producer(settings)
    for key, value in records:
        producer.produce(topic, key=key.encode() if key else None, value=value)
        producer.poll(0)
    assert producer.flush(60) == 0


def consume_all(settings: Settings, topic: str) -> list[Any]:
    """Every message currently in `topic` (all partitions)."""
    consumer = make_consumer(settings)
    try:
        ends = end_offsets(consumer, topic)
        consumer.assign([TopicPartition(topic, p, 0) for p in ends])
        remaining = {p for p, end in ends.items() if end > 0}
        out = []
        deadline = time.monotonic() + 60
        while remaining and time.monotonic() < deadline:
            msg = consumer.poll(1.0)
            if msg is None:
                continue
            if msg.error():
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    remaining.discard(msg.partition())
                continue
            out.append(msg)
            if msg.offset() >= ends[msg.partition()] - 1:
                remaining.discard(msg.partition())
        return out
    finally:
        consumer.close()
