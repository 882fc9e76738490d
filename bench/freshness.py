"""Freshness per layer: produce at a steady rate while the stream runs; for every record,
the time from its production to the Delta version that made it readable in
bronze.transactions, in silver.transactions, and to the first commit after that of every
table recomputed behind the stream (gold.dashboard, gold.fraud_scores, the gold tables).

A record's production time: in bronze, its `kafka_timestamp` (the producer's CreateTime,
stamped by librdkafka in the produce call); in silver, its `event_timestamp` (stamped by
the generator just before that call, and the only produce time silver keeps). Both are
millisecond clocks of the same process a few microseconds apart; the run checks that by
reporting kafka_timestamp - event_timestamp of the bronze records.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime
from typing import Any

import orjson
import pyarrow as pa

from bench.delta_log import Commit, DeltaTail, wait_layers
from bench.harness import Harness
from bench.profiling import step_timings
from bench.stats import summary
from producers.kafka_generate import GenerateSummary, generate_to_kafka


def _seconds(ts: pa.ChunkedArray) -> list[float]:
    # Spark may write INT96 (read as naive ns, UTC by convention here) or int64 micros.
    micros = ts.cast(pa.timestamp("us", tz="UTC"), safe=False).cast(pa.int64())
    return [v / 1e6 for v in micros.to_pylist()]


def _event_time(value: bytes | None) -> float | None:
    """The `event_timestamp` inside a bronze record's value, epoch seconds."""
    try:
        stamp = orjson.loads(value or b"").get("event_timestamp")
        return datetime.fromisoformat(stamp).timestamp() if isinstance(stamp, str) else None
    except (orjson.JSONDecodeError, AttributeError, ValueError):
        return None


def measure(h: Harness, topic: str) -> dict[str, Any]:
    cfg = h.config
    count = int(cfg.freshness_rate * cfg.freshness_seconds)
    bronze = DeltaTail(h.paths.bronze)
    tx = DeltaTail(h.paths.silver)
    downstream = {name: DeltaTail(path) for name, path in (
        ("dashboard", h.paths.gold_dashboard), ("fraud_scores", h.paths.fraud_scores),
        ("store_activity", h.paths.store_activity),
        ("customer_activity", h.paths.customer_activity),
        ("region_activity", h.paths.region_activity),
        ("hourly_summary", h.paths.hourly_summary))}
    from producers.kafka_generate import ensure_topic

    ensure_topic(h.settings, topic)
    log_mark = h.worker.log_offset()
    h.start_stream(topic, "latest")
    time.sleep(3.0)  # the query's first trigger fixes "latest" before we produce
    produced: list[GenerateSummary] = []

    def produce() -> None:
        produced.append(generate_to_kafka(h.settings, topic=topic, rate=cfg.freshness_rate,
                                          count=count, progress=False, create_topic=False))

    producer = threading.Thread(target=produce, name="bench-freshness-producer")
    producer.start()
    producer.join(cfg.freshness_seconds * 3 + 120)
    done = wait_layers({"bronze": [bronze], "silver": [tx]},
                       {"bronze": count, "silver": count}, 180)
    # The downstream recomputes follow the last append (in the refresher thread): wait.
    last = max((c.readable_at for c in tx.commits), default=0.0)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        for tail in downstream.values():
            tail.poll()
        if all(any(c.readable_at >= last for c in tail.commits)
               for tail in downstream.values()):
            break
        time.sleep(0.1)
    h.stop_stream()

    produce_to_bronze: list[float] = []
    stamp_skew: list[float] = []
    for commit in bronze.commits:
        table = bronze.read(commit, ["kafka_timestamp", "value"])
        created = _seconds(table.column("kafka_timestamp"))
        produce_to_bronze.extend(commit.readable_at - ct for ct in created)
        for ct, value in zip(created, table.column("value").to_pylist(), strict=True):
            ev = _event_time(value)
            if ev is not None:
                stamp_skew.append(ct - ev)

    produce_to_silver: list[float] = []
    produce_to_processing: list[float] = []
    processing_to_readable: list[float] = []
    produce_to: dict[str, list[float]] = {name: [] for name in downstream}
    ordered = {name: sorted(tail.commits, key=lambda c: c.readable_at)
               for name, tail in downstream.items()}
    for commit in tx.commits:
        table = tx.read(commit, ["event_timestamp", "processing_timestamp"])
        events = _seconds(table.column("event_timestamp"))
        processing = _seconds(table.column("processing_timestamp"))
        for ev, pr in zip(events, processing, strict=True):
            produce_to_silver.append(commit.readable_at - ev)
            produce_to_processing.append(pr - ev)
            processing_to_readable.append(commit.readable_at - pr)
        for name, commits in ordered.items():
            shown = _first_after(commits, commit.readable_at)
            if shown is not None:
                produce_to[name].extend(shown.readable_at - ev for ev in events)
    silver = summary(produce_to_silver)
    return {
        "rate_per_s": cfg.freshness_rate,
        "seconds": cfg.freshness_seconds,
        "produced": produced[0].valid if produced else None,
        "rows_readable": done["silver"].rows,
        "rows_bronze": done["bronze"].rows,
        "trigger_seconds": h.settings.trigger_seconds,
        "commits": len(tx.commits),
        "bronze_commits": len(bronze.commits),
        "produce_to_bronze_s": summary(produce_to_bronze),
        "produce_to_silver_s": silver,
        "produce_to_readable_s": silver,  # the same figure, by its pre-medallion name
        "produce_to_processing_start_s": summary(produce_to_processing),
        "processing_start_to_readable_s": summary(processing_to_readable),
        "produce_to_dashboard_s": summary(produce_to["dashboard"]),
        "dashboard_rows_covered": len(produce_to["dashboard"]),
        **{f"produce_to_{name}_s": summary(values) for name, values in produce_to.items()
           if name != "dashboard"},
        "kafka_timestamp_minus_event_timestamp_s": summary(stamp_skew),
        "steps": step_timings(h.worker.log_text(log_mark)),
    }


def _first_after(commits: list[Commit], at: float) -> Commit | None:
    for commit in commits:
        if commit.readable_at >= at:
            return commit
    return None
