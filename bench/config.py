"""Sizes of every measurement, scaled by `BENCH_SCALE` (default 1.0)."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any


def _scaled(base: float, scale: float, minimum: int) -> int:
    return max(minimum, round(base * scale))


@dataclass(frozen=True)
class BenchConfig:
    scale: float
    ingest_records: int        # pre-filled topic for the throughput runs (4N of scaling)
    warmup_records: int        # one small ingest + batch before measuring the warm driver
    invalid_rate: float        # share of malformed records in the pre-filled topics
    freshness_rate: float      # records/s produced while the stream runs
    freshness_seconds: float
    pings: int                 # sequential pings when idle (and at most this many under load)
    history_records: int       # Delta history rows for the turnaround (4N of scaling)
    turnaround_repeats: int    # revenue_by_category submissions to the running worker
    traditional_repeats: int   # fresh-process runs of the same analysis
    full_reports: int          # concurrent full_report batches of the isolation run
    restart_batches: int       # batch.completed events in the log before the restart
    restart_commands: int      # command answers in the log before the restart (goal: 1 M)
    spark_master: str = "local[2]"
    driver_memory: str = "2g"

    @classmethod
    def from_env(cls) -> BenchConfig:
        raw = os.environ.get("BENCH_SCALE", "1.0")
        try:
            scale = float(raw)
        except ValueError:
            raise SystemExit(f"BENCH_SCALE must be a number, got {raw!r}") from None
        if not 0.01 <= scale <= 100:
            raise SystemExit(f"BENCH_SCALE must be within [0.01, 100], got {scale}")
        return cls(
            scale=scale,
            ingest_records=_scaled(200_000, scale, 5_000),
            warmup_records=_scaled(10_000, scale, 2_000),
            invalid_rate=0.01,
            freshness_rate=200.0,
            freshness_seconds=max(10.0, 60.0 * scale),
            pings=_scaled(100, scale, 20),
            history_records=_scaled(100_000, scale, 5_000),
            turnaround_repeats=3,
            traditional_repeats=2 if scale >= 1 else 1,
            full_reports=3,
            restart_batches=_scaled(10_000, scale, 1_000),
            restart_commands=_scaled(1_000_000, scale, 20_000),
        )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)
