"""Moving the tables of a data directory written before the medallion.

Until the medallion, the stream wrote `delta/stream/transactions`, `delta/stream/quarantine`
and `delta/stream/stream_aggregations`. On start-up the worker moves each to its layer's
place (`contracts.tables.LEGACY_LOCATIONS`; a Delta table is a directory of relative paths,
so a rename moves it whole) and gives the old transactions silver's extra columns,
computed from the rows (lineage stays null: those rows came before bronze existed). Safe
to repeat: a move interrupted half-way is finished on the next start.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from contracts.silver import AMOUNT_BANDS, SILVER_EXTRA_COLUMNS
from contracts.tables import LEGACY_LOCATIONS, SILVER_TRANSACTIONS
from worker.storage import StoragePaths

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)


def move_legacy_tables(spark: SparkSession, paths: StoragePaths) -> None:
    for old_relative, new_relative in LEGACY_LOCATIONS.items():
        old, new = paths.delta / old_relative, paths.delta / new_relative
        if (old / "_delta_log").is_dir() and not new.exists():
            new.parent.mkdir(parents=True, exist_ok=True)
            old.rename(new)
            log.warning("moved the Delta table %s to %s (its layer's place)", old, new)
    from delta.tables import DeltaTable

    silver = SILVER_TRANSACTIONS.path(paths.delta)
    # A directory alone is not a table: a first write killed before its commit leaves one.
    if (silver / "_delta_log").is_dir() and DeltaTable.isDeltaTable(spark, str(silver)):
        _add_silver_columns(spark, str(silver))


def _add_silver_columns(spark: SparkSession, path: str) -> None:
    """Add and fill silver's extra columns on a table that lacks them."""
    present = set(spark.read.format("delta").load(path).columns)
    missing = [(name, kind) for name, kind in SILVER_EXTRA_COLUMNS if name not in present]
    if not missing:
        return
    table = f"delta.`{path}`"
    columns = ", ".join(f"`{name}` {kind.upper()}" for name, kind in missing)
    spark.sql(f"ALTER TABLE {table} ADD COLUMNS ({columns})")
    band = "CASE " + " ".join(
        f"WHEN total_amount >= {lower} THEN '{name}'" for name, lower in reversed(AMOUNT_BANDS)
    ) + " END"
    iso_day = "((dayofweek(event_timestamp) + 5) % 7) + 1"
    spark.sql(
        f"UPDATE {table} SET event_hour = hour(event_timestamp), day_of_week = {iso_day}, "
        f"is_weekend = {iso_day} >= 6, amount_band = {band} "
        "WHERE event_hour IS NULL AND event_timestamp IS NOT NULL")
    log.warning("silver: added and filled %s on the rows written before the medallion",
                ", ".join(name for name, _ in missing))
