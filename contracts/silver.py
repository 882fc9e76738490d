"""The silver transactions table: the 31 contract columns plus what silver adds.

Silver is written by two engines, Spark (the stream and backfills) and delta-rs (the
historical seeder), so its extra columns, their storage types and the enrichment rules are
defined once here, as data, and each engine derives its own expressions from them.

Enrichments are computed from the UTC `event_timestamp` and `total_amount`:

- `event_date`: the UTC date (the table's partition column)
- `event_hour`: the UTC hour, 0-23
- `day_of_week`: ISO day of week, 1 = Monday ... 7 = Sunday
- `is_weekend`: Saturday or Sunday
- `amount_band`: the band of `total_amount` in `AMOUNT_BANDS` (lower bound inclusive,
  upper bound exclusive)

Lineage columns say where a row came from: the Kafka coordinates of the record it was
parsed from (null for seeded history) and `ingest_run`, the write that added it
(`<app id>:<version>`: a stream micro-batch, a backfill chunk or a seeding chunk). Silver
deduplication uses `ingest_run` to tell a replay of the same write (not a duplicate) from
another write of the same transaction (a duplicate).
"""

from __future__ import annotations

import math
from datetime import datetime

PARTITION_COLUMN = "event_date"
# In the commit info of every commit `pipeline seed` makes to silver: the seeding run's
# app id. The worker finds seeded history by it (worker.silver_follower).
SEED_COMMIT_KEY = "pipeline.seed.app_id"

# (name, Spark storage type), in table order after the 31 contract columns.
SILVER_EXTRA_COLUMNS: tuple[tuple[str, str], ...] = (
    ("event_date", "date"),
    ("event_hour", "integer"),
    ("day_of_week", "integer"),
    ("is_weekend", "boolean"),
    ("amount_band", "string"),
    ("source_topic", "string"),
    ("source_partition", "integer"),
    ("source_offset", "long"),
    ("ingest_run", "string"),
)

# (band, lower bound inclusive) in increasing order; a band ends where the next begins.
AMOUNT_BANDS: tuple[tuple[str, float], ...] = (
    ("micro", 0.0),         # [0, 10)
    ("small", 10.0),        # [10, 50)
    ("medium", 50.0),       # [50, 250)
    ("large", 250.0),       # [250, 1000)
    ("very_large", 1000.0),  # [1000, 5000)
    ("huge", 5000.0),       # [5000, inf): the fraud rules' high-amount threshold
)


def amount_band(total_amount: float | None) -> str | None:
    """The band of one amount (the reference the Spark and Arrow versions are tested
    against)."""
    if total_amount is None or math.isnan(total_amount):
        return None
    band = AMOUNT_BANDS[0][0]
    for name, lower in AMOUNT_BANDS:
        if total_amount >= lower:
            band = name
    return band


def time_enrichments(event_timestamp: datetime) -> dict[str, object]:
    """`event_date`, `event_hour`, `day_of_week`, `is_weekend` of one UTC instant."""
    day_of_week = event_timestamp.isoweekday()
    return {
        "event_date": event_timestamp.date(),
        "event_hour": event_timestamp.hour,
        "day_of_week": day_of_week,
        "is_weekend": day_of_week >= 6,
    }


def ingest_run(app_id: str, version: int) -> str:
    return f"{app_id}:{version}"
