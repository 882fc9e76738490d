"""Ingest throughput: a pre-filled topic through the worker's medallion, per layer (every
record into bronze.transactions; the valid, deduplicated ones into silver.transactions and
the rest into quarantine.transactions), against the raw consume rate of the topic (the
limit) and a naive PySpark job (the peer) in its own process."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka import OFFSET_BEGINNING, KafkaError, TopicPartition

from bench.delta_log import DeltaTail, LayerDone, wait_layers
from bench.harness import Harness
from bench.memory import RssSampler
from bench.profiling import step_timings
from bench.stats import rate
from contracts.kafka_clients import make_consumer
from contracts.settings import Settings

REPO = Path(__file__).resolve().parent.parent


def raw_consume(settings: Settings, topic: str, expected: int, *, parse: bool) -> dict[str, Any]:
    """A plain confluent-kafka loop over the whole topic; with `parse`, each value is also
    decoded with orjson (the least a Python consumer does with a record)."""
    consumer = make_consumer(settings, **{"enable.partition.eof": False,
                                          "fetch.max.bytes": 52_428_800,
                                          "max.partition.fetch.bytes": 10_485_760})
    try:
        meta = consumer.list_topics(topic, timeout=30).topics[topic]
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in meta.partitions])
        loads = orjson.loads
        seen = nbytes = 0
        started = time.monotonic()
        deadline = started + 300
        while seen < expected and time.monotonic() < deadline:
            for msg in consumer.consume(10_000, 1.0):
                if msg.error():
                    if msg.error().code() != KafkaError._PARTITION_EOF:
                        raise RuntimeError(str(msg.error()))
                    continue
                value = msg.value()
                nbytes += len(value)
                if parse:
                    with contextlib.suppress(orjson.JSONDecodeError):
                        loads(value)
                seen += 1
        seconds = time.monotonic() - started
    finally:
        consumer.close()
    return {"records": seen, "seconds": round(seconds, 3), "records_per_s": rate(seen, seconds),
            "mib_per_s": round(nbytes / 1048576 / seconds, 1) if seconds else None,
            "avg_record_bytes": round(nbytes / seen) if seen else None}


def naive_peer(env: dict[str, str], bootstrap: str, topic: str, out_dir: Path,
               expected: int, runs: int = 2) -> dict[str, Any]:
    """Run bench/naive_spark.py in a fresh process: run 1 is cold, run 2 warm. Its
    process tree's peak RSS is the memory baseline of a plain Spark driver."""
    sampler = RssSampler(interval=0.25)
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.naive_spark", "--bootstrap", bootstrap, "--topic", topic,
         "--out", str(out_dir), "--runs", str(runs),
         "--master", env["PIPELINE_SPARK_MASTER"],
         "--driver-memory", env["PIPELINE_SPARK_DRIVER_MEMORY"]],
        env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sampler.watch(proc.pid)
    try:
        stdout, stderr = proc.communicate(timeout=1200)
    finally:
        if proc.poll() is None:
            proc.kill()
        sampler.close()
    wall = time.monotonic() - started
    if proc.returncode != 0:
        raise RuntimeError(f"naive peer failed:\n{stderr.strip()[-3000:]}")
    out: dict[str, Any] = orjson.loads(stdout.strip().splitlines()[-1])
    runs_out = []
    for i, seconds in enumerate(out["run_seconds"]):
        tail = DeltaTail(out_dir / f"run{i}", from_end=False)
        tail.poll()
        runs_out.append({"seconds": seconds, "rows": tail.rows,
                         "records_per_s": rate(expected, seconds)})
    return {"records": expected, "process_wall_s": round(wall, 2),
            "spark_start_s": out["spark_start_s"], "cold": runs_out[0],
            "warm": runs_out[-1] if len(runs_out) > 1 else None,
            "peak_rss_mib": sampler.report()["peak_rss_mib"]}


def stream_ingest(h: Harness, topic: str, expected: int, *, label: str,
                  timeout: float | None = None) -> dict[str, Any]:
    """start_stream (earliest) on a pre-filled topic, medallion on. Timed from the command
    to the Delta commit that makes bronze hold `expected` records (layers.bronze), and to
    the one that makes silver + quarantine hold them (layers.silver; transactions the
    silver dedupe skipped, as the worker reports them, count as held). Top-level
    `seconds` / `records_per_s`: every layer written, the later of the two."""
    paths = h.paths
    bronze = DeltaTail(paths.bronze)
    silver, quarantine = DeltaTail(paths.silver), DeltaTail(paths.quarantine)
    log_mark = h.worker.log_offset()
    event_mark = h.watcher.mark()

    def progress() -> list[dict[str, Any]]:
        return [e.data for e in h.watcher.since(event_mark) if e.type == "stream.progress"]

    def silver_target() -> int:
        return expected - sum(int(p.get("duplicates") or 0) for p in progress())

    sent_wall, start_s = h.start_stream(topic, "earliest")
    done = wait_layers({"bronze": [bronze], "silver": [silver, quarantine]},
                       {"bronze": expected, "silver": silver_target},
                       timeout or max(300.0, expected / 500))
    h.stop_stream()
    batches = progress()
    rows_in = sum(int(p.get("rows_in", 0)) for p in batches)
    processing = sum(int(p.get("batch_duration_ms", 0)) for p in batches) / 1000
    layers = {name: _layer(d, sent_wall, expected) for name, d in done.items()}
    ends = [d.done_at for d in done.values() if d.done_at is not None]
    seconds = max(ends) - sent_wall if len(ends) == len(done) else None
    return {
        "label": label,
        "topic": topic,
        "records": expected,
        "rows_seen": done["silver"].rows,
        "rows_bronze": bronze.rows,
        "rows_valid": silver.rows,
        "rows_quarantined": quarantine.rows,
        "duplicates": sum(int(p.get("duplicates") or 0) for p in batches),
        "complete": seconds is not None,
        "seconds": round(seconds, 3) if seconds is not None else None,
        "records_per_s": rate(expected, seconds),
        "layers": layers,
        "query_start_s": round(start_s, 3),
        "micro_batches": len(batches),
        "processing_s": round(processing, 3),
        "processing_records_per_s": rate(rows_in, processing),
        "steps": step_timings(h.worker.log_text(log_mark)),
    }


def _layer(done: LayerDone, sent_wall: float, expected: int) -> dict[str, Any]:
    seconds = done.done_at - sent_wall if done.done_at is not None else None
    return {"seconds": round(seconds, 3) if seconds is not None else None,
            "records_per_s": rate(expected, seconds), "rows": done.rows,
            "complete": done.done_at is not None}
