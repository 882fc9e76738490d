"""A bounded Kafka range made concrete, and cut into chunks.

A backfill names its range the way a batch does ("earliest", "latest", offsets per
partition, timestamps). Before its first chunk the range is resolved once into concrete
[start, end) offsets per partition and recorded in the backfill's events, so a re-run
after a restart replays exactly the same records, whatever arrived in the meantime, in the
same chunks (each chunk is one idempotent medallion write).
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import orjson
from confluent_kafka import TopicPartition

from contracts.kafka_clients import make_consumer
from contracts.settings import Settings
from worker.batch_sources import topic_watermarks
from worker.errors import SourceError

Range = dict[int, tuple[int, int]]  # partition -> [start, end)


def resolve_range(settings: Settings, topic: str, start: Any, end: Any) -> Range:
    bounds = topic_watermarks(settings, topic)
    starts = _resolve(settings, topic, start, bounds, default_high=False, name="start")
    ends = _resolve(settings, topic, end, bounds, default_high=True, name="end")
    out: Range = {}
    for partition in sorted(bounds):
        low, high = starts[partition], ends[partition]
        if high < low:
            raise SourceError(f"end offset {high} is before start offset {low} in partition "
                              f"{partition} of {topic}")
        out[partition] = (low, high)
    return out


def _resolve(settings: Settings, topic: str, spec: Any, bounds: dict[int, tuple[int, int]],
             *, default_high: bool, name: str) -> dict[int, int]:
    if spec == "earliest":
        return {p: low for p, (low, _) in bounds.items()}
    if spec == "latest":
        return {p: high for p, (_, high) in bounds.items()}
    if isinstance(spec, datetime):
        return _at_time(settings, topic, spec, bounds)
    if isinstance(spec, dict):
        unknown = set(spec) - {str(p) for p in bounds}
        if unknown:
            raise SourceError(f"topic {topic} has no partition(s) {sorted(unknown)}")
        out = {}
        for p, (low, high) in bounds.items():
            offset = spec.get(str(p))
            if offset is None or offset < 0:  # -2 earliest, -1 latest, absent: the default
                offset = high if (offset == -1 or (offset is None and default_high)) else low
            elif not low <= offset <= high:
                raise SourceError(f"{name} offset {offset} is out of range for {topic} "
                                  f"partition {p} (available: {low}..{high})")
            out[p] = offset
        return out
    raise SourceError(f"unsupported {name} offset {spec!r}")


def _at_time(settings: Settings, topic: str, at: datetime,
             bounds: dict[int, tuple[int, int]]) -> dict[int, int]:
    """The first offset at or after `at` in each partition (the end of the partition when
    nothing is that recent)."""
    consumer = make_consumer(settings)
    try:
        millis = int(at.timestamp() * 1000)
        found = consumer.offsets_for_times(
            [TopicPartition(topic, p, millis) for p in bounds], timeout=10)
    finally:
        consumer.close()
    return {tp.partition: tp.offset if tp.offset >= 0 else bounds[tp.partition][1]
            for tp in found}


def chunk_range(full: Range, max_records: int) -> list[Range]:
    """Cut a range into chunks of at most `max_records`, partition by partition in equal
    steps; deterministic, so a re-run cuts the same chunks."""
    busy = {p: r for p, r in full.items() if r[1] > r[0]}
    if not busy:
        return []
    step = max(1, max_records // len(busy))
    count = max(math.ceil((end - start) / step) for start, end in busy.values())
    chunks = []
    for i in range(count):
        chunk = {}
        for p, (start, end) in busy.items():
            low = start + i * step
            if low < end:
                chunk[p] = (low, min(end, low + step))
        chunks.append(chunk)
    return chunks


def spark_options(topic: str, chunk: Range) -> dict[str, str]:
    """Spark Kafka batch options reading exactly `chunk`."""
    partitions = sorted(chunk)
    return {
        "assign": orjson.dumps({topic: partitions}).decode(),
        "startingOffsets": orjson.dumps(
            {topic: {str(p): chunk[p][0] for p in partitions}}).decode(),
        "endingOffsets": orjson.dumps(
            {topic: {str(p): chunk[p][1] for p in partitions}}).decode(),
    }


def as_json(full: Range) -> dict[str, list[int]]:
    return {str(p): [start, end] for p, (start, end) in sorted(full.items())}


def from_json(data: dict[str, list[int]]) -> Range:
    return {int(p): (int(v[0]), int(v[1])) for p, v in data.items()}
