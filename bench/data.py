"""Test data: pre-filled topics (`pipeline generate --rate 0`) and Delta history (the
seeder behind `pipeline seed`), each in its own range so measurements never overlap."""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson

from bench.worker_proc import PIPELINE
from contracts.settings import Settings
from producers.seeder import seed_history


@dataclass(frozen=True)
class Topic:
    name: str
    valid: int
    invalid: int
    seconds: float

    @property
    def records(self) -> int:
        return self.valid + self.invalid


def prefill(env: dict[str, str], topic: str, count: int, invalid_rate: float,
            seed: int) -> Topic:
    """Produce `count` records as fast as possible with the project's own CLI."""
    result = subprocess.run(
        [PIPELINE, "generate", "--rate", "0", "--count", str(count), "--topic", topic,
         "--invalid-rate", str(invalid_rate), "--seed", str(seed), "--json"],
        env=env, capture_output=True, text=True, timeout=900, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"pipeline generate failed: {result.stderr.strip()[-2000:]}")
    out: dict[str, Any] = orjson.loads(result.stdout.strip().splitlines()[-1])
    return Topic(topic, int(out["valid"]), int(out["invalid"]), float(out["seconds"]))


@dataclass(frozen=True)
class History:
    """A slice of silver.transactions history, as the seeder wrote it: dates
    [start_date, end_date]."""

    label: str
    records: int
    start_date: date
    end_date: date
    seconds: float

    def source(self) -> dict[str, str]:
        return {"kind": "delta", "start_date": self.start_date.isoformat(),
                "end_date": self.end_date.isoformat()}


def seed(settings: Settings, label: str, records: int, *, days: int, ends_days_ago: int,
         seed_value: int) -> History:
    """Append `records` rows over `days` days ending `ends_days_ago` days before today
    (UTC midnight), so that the live stream (today) never falls into the slice."""
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    end = today - timedelta(days=ends_days_ago)
    started = time.monotonic()
    summary = seed_history(settings, records=records, days=days, end=end, seed=seed_value,
                           progress=False)
    return History(label, summary.records, (end - timedelta(days=days)).date(),
                   (end - timedelta(days=1)).date(), time.monotonic() - started)
