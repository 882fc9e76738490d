"""Isolation: stream throughput while `full_report` batches run (FAIR pools), as a
fraction of its solo throughput; command latency is sampled over the same window."""

from __future__ import annotations

import time
import uuid
from typing import Any

from bench.data import History, Topic
from bench.harness import Harness
from bench.ingest import stream_ingest
from bench.latency import BackgroundPinger


def measure(h: Harness, topic: Topic, history: History) -> dict[str, Any]:
    cfg = h.config
    marks: dict[str, int] = {}
    sent_at: dict[str, float] = {}
    for i in range(cfg.full_reports):
        batch_id = f"bench-full-report-{i}-{uuid.uuid4().hex[:6]}"
        sent_at[batch_id], marks[batch_id] = h.submit_batch(batch_id, "full_report",
                                                            history.source())
    # The load is on once every batch runs (they share the pool's threads).
    first_mark = min(marks.values())
    for batch_id in marks:
        h.commander.wait(lambda e, s=f"batch/{batch_id}": e.subject == s
                         and e.type == "batch.running", 300, first_mark, f"{batch_id} running")
    time.sleep(1.0)
    with BackgroundPinger(h, limit=cfg.pings * 10) as pinger:
        ingest_started = time.monotonic()
        ingest = stream_ingest(h, topic.name, topic.records, label="under full_report load")
        ingest_ended = time.monotonic()
        finished: dict[str, float] = {}
        for batch_id, mark in marks.items():
            done = h.wait_batch(batch_id, mark, 1200)
            finished[batch_id] = done.mono
    overlap = [min(end, ingest_ended) - ingest_started for end in finished.values()]
    window = ingest_ended - ingest_started
    return {
        "full_reports": cfg.full_reports,
        "history_rows": history.records,
        "ingest": ingest,
        "batches_s": {b: round(finished[b] - sent_at[b], 2) for b in finished},
        # 1.0 = every batch ran for the whole ingest window.
        "load_coverage": round(sum(max(0.0, o) for o in overlap) / (window * len(overlap)), 3)
        if window > 0 and overlap else None,
        "pings_under_load": pinger.result,
    }
