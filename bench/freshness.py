"""Freshness: produce at a steady rate while the stream runs; for every record, the time
from its production (its event_timestamp, stamped by the generator as it is produced)
to the Delta version that made it readable, and to the dashboard upsert after it."""

from __future__ import annotations

import threading
import time
from typing import Any

import pyarrow as pa

from bench.delta_log import Commit, DeltaTail, wait_rows
from bench.harness import Harness
from bench.profiling import step_timings
from bench.stats import summary
from producers.kafka_generate import GenerateSummary, generate_to_kafka


def _seconds(ts: pa.ChunkedArray) -> list[float]:
    # Spark may write INT96 (read as naive ns, UTC by convention here) or int64 micros.
    micros = ts.cast(pa.timestamp("us", tz="UTC"), safe=False).cast(pa.int64())
    return [v / 1e6 for v in micros.to_pylist()]


def measure(h: Harness, topic: str) -> dict[str, Any]:
    cfg = h.config
    count = int(cfg.freshness_rate * cfg.freshness_seconds)
    tx = DeltaTail(h.paths.transactions)
    dash = DeltaTail(h.paths.stream_aggregations)
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
    rows, _done = wait_rows([tx], count, 180)
    # The dashboard upsert follows the last append (in the refresher thread): wait for it.
    last = max((c.readable_at for c in tx.commits), default=0.0)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        dash.poll()
        if any(c.readable_at >= last for c in dash.commits):
            break
        time.sleep(0.1)
    h.stop_stream()

    produce_to_readable: list[float] = []
    produce_to_processing: list[float] = []
    processing_to_readable: list[float] = []
    produce_to_dashboard: list[float] = []
    dash_commits = sorted(dash.commits, key=lambda c: c.readable_at)
    for commit in tx.commits:
        table = tx.read(commit, ["event_timestamp", "processing_timestamp"])
        events = _seconds(table.column("event_timestamp"))
        processing = _seconds(table.column("processing_timestamp"))
        for ev, pr in zip(events, processing, strict=True):
            produce_to_readable.append(commit.readable_at - ev)
            produce_to_processing.append(pr - ev)
            processing_to_readable.append(commit.readable_at - pr)
        shown = _first_after(dash_commits, commit.readable_at)
        if shown is not None:
            produce_to_dashboard.extend(shown.readable_at - ev for ev in events)
    return {
        "rate_per_s": cfg.freshness_rate,
        "seconds": cfg.freshness_seconds,
        "produced": produced[0].valid if produced else None,
        "rows_readable": rows,
        "trigger_seconds": h.settings.trigger_seconds,
        "commits": len(tx.commits),
        "produce_to_readable_s": summary(produce_to_readable),
        "produce_to_processing_start_s": summary(produce_to_processing),
        "processing_start_to_readable_s": summary(processing_to_readable),
        "produce_to_dashboard_s": summary(produce_to_dashboard),
        "dashboard_rows_covered": len(produce_to_dashboard),
        "steps": step_timings(h.worker.log_text(log_mark)),
    }


def _first_after(commits: list[Commit], at: float) -> Commit | None:
    for commit in commits:
        if commit.readable_at >= at:
            return commit
    return None
