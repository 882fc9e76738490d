"""Every Delta table by logical name: the names scripts use, and where each one lives.

The logical names (`bronze.transactions`, `silver.transactions`, ...) are the contract;
the paths under `PIPELINE_DATA_DIR/delta` follow the layer names so that the layout reads
like the medallion it is. Pure: the worker, the CLI (`pipeline tables`) and the seeder
all resolve tables here, and none of them needs Spark to do it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class TableSpec:
    name: str          # logical name, "<layer>.<table>"
    layer: str         # bronze | silver | quarantine | quality | gold | batch
    relative: str      # path under the Delta root
    description: str

    def path(self, delta_root: Path) -> Path:
        return delta_root / self.relative


BRONZE_TRANSACTIONS = TableSpec(
    "bronze.transactions", "bronze", "bronze/transactions",
    "every Kafka record of the stream topic as received (key, value bytes, headers, "
    "topic, partition, offset), valid or not")
SILVER_TRANSACTIONS = TableSpec(
    "silver.transactions", "silver", "silver/transactions",
    "contract-valid transactions: typed, enriched, deduplicated on transaction_id; "
    "partitioned by event_date")
QUARANTINE_TRANSACTIONS = TableSpec(
    "quarantine.transactions", "quarantine", "quarantine/transactions",
    "records that failed the contract or a `drop` expectation: raw bytes and reason")
QUALITY_METRICS = TableSpec(
    "quality.metrics", "quality", "quality/metrics",
    "one row per micro-batch and expectation: rows checked, rows failed, metric, passed")
GOLD_DASHBOARD = TableSpec(
    "gold.dashboard", "gold", "gold/dashboard",
    "real-time 1-minute revenue windows, upserted behind the stream")

GOLD_FRAUD_SCORES = TableSpec(
    "gold.fraud_scores", "gold", "gold/fraud_scores",
    "one row per silver transaction: rule score, risk level, reasons, velocity and the "
    "model's score; rescored when late data changes a velocity")
GOLD_STORE_ACTIVITY = TableSpec(
    "gold.store_activity", "gold", "gold/store_activity",
    "15-minute windows sliding every 5 minutes, per store_id (null: 'online')")
GOLD_CUSTOMER_ACTIVITY = TableSpec(
    "gold.customer_activity", "gold", "gold/customer_activity",
    "1-hour tumbling windows per customer_id, with high-risk counts and a suspicious flag")
GOLD_REGION_ACTIVITY = TableSpec(
    "gold.region_activity", "gold", "gold/region_activity",
    "30-minute tumbling windows per region")
GOLD_HOURLY_SUMMARY = TableSpec(
    "gold.hourly_summary", "gold", "gold/hourly_summary",
    "1-hour tumbling windows, platform-wide, with the payment-method mix")

# Tables recomputed from silver behind the stream, in the order they are refreshed (the
# customer table reads the fraud scores).
DOWNSTREAM_TABLES: tuple[TableSpec, ...] = (
    GOLD_DASHBOARD, GOLD_FRAUD_SCORES, GOLD_STORE_ACTIVITY, GOLD_CUSTOMER_ACTIVITY,
    GOLD_REGION_ACTIVITY, GOLD_HOURLY_SUMMARY,
)

# The stream's tables, in the order a micro-batch writes them.
STREAM_TABLES: tuple[TableSpec, ...] = (
    BRONZE_TRANSACTIONS, SILVER_TRANSACTIONS, QUARANTINE_TRANSACTIONS, QUALITY_METRICS,
    *DOWNSTREAM_TABLES,
)

# Where the tables lived before the medallion; the worker moves them on its first start.
LEGACY_LOCATIONS: dict[str, str] = {
    "stream/transactions": SILVER_TRANSACTIONS.relative,
    "stream/quarantine": QUARANTINE_TRANSACTIONS.relative,
    "stream/stream_aggregations": GOLD_DASHBOARD.relative,
}

BATCH_LAYER = "batch"
BATCHES_DIR = "batches"


def batch_raw_name(batch_id: str) -> str:
    return f"batch.{batch_id}.raw"


def batch_aggregated_name(batch_id: str, analysis: str) -> str:
    return f"batch.{batch_id}.{analysis}"


def table_by_name(name: str) -> TableSpec | None:
    return next((spec for spec in STREAM_TABLES if spec.name == name), None)
