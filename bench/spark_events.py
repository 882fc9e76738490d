"""Optional job-level profile from Spark's event log (`BENCH_SPARK_EVENTLOG=1`).

The worker is started with `PYSPARK_SUBMIT_ARGS` enabling Spark's event log; afterwards
each job's wall time is grouped by its call site and scheduler pool. The event log costs
the driver a little, so it is off for the measured default run.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson


def enabled() -> bool:
    return bool(os.environ.get("BENCH_SPARK_EVENTLOG"))


def submit_args(log_dir: Path) -> str:
    log_dir.mkdir(parents=True, exist_ok=True)
    # Plain JSON lines in one file: Spark 4 defaults to rolling, zstd-compressed logs.
    return (f"--conf spark.eventLog.enabled=true --conf spark.eventLog.dir=file://{log_dir} "
            "--conf spark.eventLog.compress=false --conf spark.eventLog.rolling.enabled=false "
            "pyspark-shell")


def job_profile(log_dir: Path, since_ms: float = 0, until_ms: float = float("inf"),
                top: int = 25) -> list[dict[str, Any]]:
    """Jobs submitted in [since_ms, until_ms), grouped by (pool, call site), slowest first."""
    starts: dict[int, tuple[float, str, str]] = {}
    groups: dict[tuple[str, str], list[float]] = {}
    for path in sorted(log_dir.rglob("*")):
        if not path.is_file() or path.name.startswith(".") or path.suffix == ".zstd":
            continue
        with path.open("rb") as handle:
            for line in handle:
                if b'"SparkListenerJob' not in line[:60]:
                    continue
                event = orjson.loads(line)
                if event["Event"] == "SparkListenerJobStart":
                    props = event.get("Properties") or {}
                    site = props.get("callSite.short") or "?"
                    pool = props.get("spark.scheduler.pool") or "default"
                    starts[event["Job ID"]] = (event["Submission Time"], pool, site)
                elif event["Event"] == "SparkListenerJobEnd":
                    start = starts.pop(event["Job ID"], None)
                    if start is None or not since_ms <= start[0] < until_ms:
                        continue
                    seconds = (event["Completion Time"] - start[0]) / 1000
                    groups.setdefault((start[1], start[2]), []).append(seconds)
    rows = [{"pool": pool, "call_site": site, "jobs": len(secs),
             "seconds": round(sum(secs), 2), "max_s": round(max(secs), 2)}
            for (pool, site), secs in groups.items()]
    rows.sort(key=lambda r: -r["seconds"])
    return rows[:top]
