"""silver.transactions in Arrow: its schema and its enrichments, computed vectorised.

The Arrow counterpart of `contracts.silver` for writers without Spark (the historical
seeder). The schema is derived from the same Spark schema JSON the worker writes with, so
a table appended to by both engines has one schema; the enrichments are whole-column
integer arithmetic on the UTC instant (no per-row Python, no time-zone database) and are
tested against `contracts.silver`'s per-row reference functions.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from contracts.silver import AMOUNT_BANDS, SILVER_EXTRA_COLUMNS
from contracts.spark_schema import spark_schema_json

# Spark storage type -> the Arrow type Spark's Delta writer puts in Parquet; delta-rs
# must append exactly these or the two engines' files disagree.
SPARK_TO_ARROW: dict[str, pa.DataType] = {
    "string": pa.string(),
    "timestamp": pa.timestamp("us", tz="UTC"),  # Delta `timestamp`: a UTC instant in µs
    "integer": pa.int32(),
    "long": pa.int64(),
    "double": pa.float64(),
    "boolean": pa.bool_(),
    "date": pa.date32(),
}

_US_PER_HOUR = 3_600_000_000
_US_PER_DAY = 24 * _US_PER_HOUR
# 1970-01-01 was a Thursday, ISO day 4: ISO weekday = (days since epoch + 3) mod 7 + 1.
_EPOCH_ISO_OFFSET = 3
_BAND_NAMES = pa.array([name for name, _ in AMOUNT_BANDS], pa.string())
_BAND_LOWERS = np.array([lower for _, lower in AMOUNT_BANDS], dtype=np.float64)


def silver_arrow_schema() -> pa.Schema:
    """silver.transactions as Arrow: the 31 contract columns, then `SILVER_EXTRA_COLUMNS`,
    in that order, all nullable (as Spark writes them)."""
    spark = spark_schema_json(extra=list(SILVER_EXTRA_COLUMNS))
    return pa.schema([pa.field(f["name"], SPARK_TO_ARROW[f["type"]], nullable=True)
                      for f in spark["fields"]])


def _flat(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values


def time_enrichment_arrays(event_timestamp: pa.Array | pa.ChunkedArray
                           ) -> dict[str, pa.Array]:
    """`event_date`, `event_hour`, `day_of_week` (ISO), `is_weekend` of UTC instants;
    null where the instant is null."""
    ts = _flat(event_timestamp).cast(pa.timestamp("us", tz="UTC"))
    nulls = ts.is_null().to_numpy(zero_copy_only=False)
    mask = nulls if nulls.any() else None
    micros = ts.cast(pa.int64()).fill_null(0).to_numpy(zero_copy_only=False)
    # Floor division and a non-negative modulo: correct before 1970 too.
    days = micros // _US_PER_DAY
    hour = (micros // _US_PER_HOUR) % 24
    iso_day = (days + _EPOCH_ISO_OFFSET) % 7 + 1
    return {
        "event_date": pa.array(days.astype(np.int32), pa.int32(), mask=mask).cast(pa.date32()),
        "event_hour": pa.array(hour.astype(np.int32), pa.int32(), mask=mask),
        "day_of_week": pa.array(iso_day.astype(np.int32), pa.int32(), mask=mask),
        "is_weekend": pa.array(iso_day >= 6, pa.bool_(), mask=mask),
    }


def amount_band_array(total_amount: pa.Array | pa.ChunkedArray) -> pa.Array:
    """The `AMOUNT_BANDS` band of each amount (lower bound inclusive); null for null/NaN.

    Below the first lower bound counts as the first band, as `contracts.silver.amount_band`
    has it (the contract forbids negative amounts, but the two must never disagree).
    """
    amounts = _flat(total_amount).cast(pa.float64())
    values = amounts.fill_null(np.nan).to_numpy(zero_copy_only=False)
    index = np.searchsorted(_BAND_LOWERS, values, side="right") - 1
    np.clip(index, 0, len(_BAND_LOWERS) - 1, out=index)
    # A null index takes a null band.
    indices = pa.array(index.astype(np.int32), pa.int32(), mask=np.isnan(values))
    return pc.take(_BAND_NAMES, indices)


def silver_enrichment_arrays(event_timestamp: pa.Array | pa.ChunkedArray,
                             total_amount: pa.Array | pa.ChunkedArray) -> dict[str, pa.Array]:
    """Every computed (non-lineage) extra column of silver, by name."""
    return {**time_enrichment_arrays(event_timestamp),
            "amount_band": amount_band_array(total_amount)}
