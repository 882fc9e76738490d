"""Small-batch turnaround: revenue_by_category over Delta history, submitted to the running
worker (submit -> batch.completed), against the traditional way: a fresh process that
starts Spark, runs the same analysis function and exits."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import orjson

from bench.data import History
from bench.harness import Harness
from bench.stats import percentile

REPO = Path(__file__).resolve().parent.parent
ANALYSIS = "revenue_by_category"


def worker_batch(h: Harness, history: History, analysis: str = ANALYSIS,
                 timeout: float = 600.0) -> dict[str, Any]:
    batch_id = f"bench-{analysis.replace('_', '-')}-{uuid.uuid4().hex[:8]}"
    sent, mark = h.submit_batch(batch_id, analysis, history.source())
    done = h.wait_batch(batch_id, mark, timeout)
    return {"batch_id": batch_id, "seconds": round(done.mono - sent, 3),
            "in_worker_s": done.data.get("duration_seconds"),
            "rows": done.data.get("row_count")}


def traditional_job(h: Harness, history: History, out: Path) -> dict[str, Any]:
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "bench.traditional_job", "--start-date",
         history.start_date.isoformat(), "--end-date", history.end_date.isoformat(),
         "--out", str(out)],
        env=h.env, cwd=REPO, capture_output=True, text=True, timeout=900, check=False)
    wall = time.monotonic() - started
    if result.returncode != 0:
        raise RuntimeError(f"traditional job failed:\n{result.stderr.strip()[-3000:]}")
    inner: dict[str, Any] = orjson.loads(result.stdout.strip().splitlines()[-1])
    return {"seconds": round(wall, 3), **inner}


def measure(h: Harness, history: History) -> dict[str, Any]:
    cfg = h.config
    runs = [worker_batch(h, history) for _ in range(cfg.turnaround_repeats)]
    jobs = [traditional_job(h, history, h.root / "traditional" / f"run{i}")
            for i in range(cfg.traditional_repeats)]
    worker_s = percentile([r["seconds"] for r in runs], 50)
    fresh_s = percentile([j["seconds"] for j in jobs], 50)
    return {
        "analysis": ANALYSIS,
        "history_rows": history.records,
        "worker_runs": runs,
        "traditional_runs": jobs,
        "worker_median_s": round(worker_s, 3) if worker_s is not None else None,
        "traditional_median_s": round(fresh_s, 3) if fresh_s is not None else None,
    }
