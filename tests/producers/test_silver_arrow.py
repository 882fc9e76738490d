"""The vectorised silver enrichments agree with contracts.silver's per-row reference."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest

from contracts import silver
from producers.silver_arrow import (
    amount_band_array,
    silver_arrow_schema,
    silver_enrichment_arrays,
    time_enrichment_arrays,
)

BOUNDARIES = [lower for _, lower in silver.AMOUNT_BANDS]


def _amounts(rng: random.Random, n: int) -> list[float | None]:
    """Random amounts plus every band boundary, a hair either side of it, and the odd ones."""
    edges = [x for b in BOUNDARIES for x in (b, math.nextafter(b, -math.inf),
                                             math.nextafter(b, math.inf), b - 0.01, b + 0.01)]
    odd = [None, math.nan, -5.0, 0.0, 1e12, 9.999, 49.99, 4999.99]
    return edges + odd + [round(rng.uniform(0, 20_000), 2) for _ in range(n)]


def _instants(rng: random.Random, n: int) -> list[datetime]:
    """Around midnight UTC (either side), over a weekend, and at random over decades,
    including before 1970."""
    around: list[datetime] = []
    for day in range(14):  # two weeks: every weekday, two weekends, fourteen midnights
        midnight = datetime(2025, 3, 1, tzinfo=UTC) + timedelta(days=day)
        around += [midnight + timedelta(microseconds=d)
                   for d in (-3_600_000_000, -1_000_000, -1, 0, 1, 1_000_000, 3_600_000_000)]
    start = datetime(1960, 1, 1, tzinfo=UTC)
    span_us = int((datetime(2040, 1, 1, tzinfo=UTC) - start).total_seconds() * 1e6)
    return around + [start + timedelta(microseconds=rng.randrange(span_us)) for _ in range(n)]


def test_time_enrichments_match_the_reference() -> None:
    instants = _instants(random.Random(3), 4_000)
    arrays = time_enrichment_arrays(pa.array(instants, pa.timestamp("us", tz="UTC")))
    got = pa.table(arrays).to_pylist()
    assert got == [silver.time_enrichments(at) for at in instants]
    # The midnight and weekend cases really were there.
    assert {row["day_of_week"] for row in got} == set(range(1, 8))
    assert {row["event_hour"] for row in got[:98]} == {0, 1, 23}


def test_time_enrichments_take_any_unit_and_nulls() -> None:
    at = datetime(2025, 3, 2, 23, 59, 59, tzinfo=UTC)  # a Sunday, one second to midnight
    arrays = time_enrichment_arrays(pa.chunked_array(
        [pa.array([at, None], pa.timestamp("ms", tz="UTC"))]))
    assert pa.table(arrays).to_pylist() == [silver.time_enrichments(at), dict.fromkeys(
        ["event_date", "event_hour", "day_of_week", "is_weekend"])]
    assert arrays["event_date"].type == pa.date32()
    assert arrays["event_hour"].type == arrays["day_of_week"].type == pa.int32()


def test_amount_bands_match_the_reference() -> None:
    amounts = _amounts(random.Random(5), 4_000)
    got = amount_band_array(pa.array(amounts, pa.float64(), from_pandas=True)).to_pylist()
    assert got == [silver.amount_band(a) for a in amounts]
    assert set(got) == {name for name, _ in silver.AMOUNT_BANDS} | {None}


@pytest.mark.parametrize(("amount", "band"), [
    (0.0, "micro"), (9.99, "micro"), (10.0, "small"), (49.99, "small"), (50.0, "medium"),
    (250.0, "large"), (999.99, "large"), (1000.0, "very_large"), (5000.0, "huge")])
def test_band_boundaries(amount: float, band: str) -> None:
    assert amount_band_array(pa.array([amount])).to_pylist() == [band]


def test_enrichments_fit_the_silver_schema() -> None:
    schema = silver_arrow_schema()
    at = datetime(2025, 3, 1, tzinfo=UTC)
    arrays = silver_enrichment_arrays(pa.array([at], pa.timestamp("us", tz="UTC")),
                                      pa.array([12.5]))
    for name, array in arrays.items():
        assert array.type == schema.field(name).type, name
