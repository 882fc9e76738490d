"""Historical seeder (docs/generator.md): months of transactions appended to `stream/transactions`.

Written with delta-rs from Arrow record batches, no Spark or JVM, into the same table the
worker's stream appends to, so batches over history work at once. The Arrow schema is
derived from the contract (`FIELD_RULES`) and must stay identical to the one Spark writes.
"""

from __future__ import annotations

import time
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
from deltalake import DeltaTable, write_deltalake

from contracts.settings import Settings
from contracts.spark_schema import FIELD_RULES
from producers.generator import TransactionGenerator

PARTITION_COLUMN = "event_date"
DEFAULT_CHUNK_ROWS = 100_000

_ARROW_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "timestamp": pa.timestamp("us", tz="UTC"),  # Delta `timestamp` (UTC instant), as Spark writes
    "integer": pa.int32(),
    "double": pa.float64(),
    "boolean": pa.bool_(),
}


def transactions_arrow_schema() -> pa.Schema:
    """The `stream/transactions` schema: the 31 contract fields + `event_date`, all nullable.

    Nullable like the Spark schema (`spark_schema_json`): validity is checked before a
    write, and identical nullability is what lets Spark and delta-rs append to one table.
    """
    fields = [pa.field(rule.name, _ARROW_TYPES[rule.spark_type], nullable=True)
              for rule in FIELD_RULES]
    fields.append(pa.field(PARTITION_COLUMN, pa.date32(), nullable=True))
    return pa.schema(fields)


def transactions_table_path(settings: Settings) -> Path:
    return settings.delta_dir / "stream" / "transactions"


@dataclass
class SeedSummary:
    records: int
    by_category: dict[str, int]
    first_date: date | None
    last_date: date | None
    avg_order_value: float
    fraud_rate: float
    kafka_topic: str | None
    seconds: float
    table_path: str = ""
    table_version: int | None = None

    def to_json_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("first_date", "last_date"):
            data[key] = data[key].isoformat() if data[key] else None
        return data

    def render(self) -> Any:
        """The seeding summary (totals, per category, dates, AOV, fraud) as a rich renderable."""
        from rich.console import Group
        from rich.table import Table

        overview = Table.grid(padding=(0, 2))
        overview.add_column(style="bold")
        overview.add_column()
        overview.add_row("records", f"{self.records:,} in {self.seconds:.1f}s")
        overview.add_row("date range", f"{self.first_date} .. {self.last_date}")
        overview.add_row("avg order value", f"{self.avg_order_value:,.2f}")
        overview.add_row("fraud rate", f"{self.fraud_rate:.2%}")
        overview.add_row("delta table", f"{self.table_path} (version {self.table_version})")
        if self.kafka_topic:
            overview.add_row("kafka topic", self.kafka_topic)
        categories = Table("category", "records", "share")
        categories.columns[1].justify = categories.columns[2].justify = "right"
        for category, n in sorted(self.by_category.items(), key=lambda kv: -kv[1]):
            categories.add_row(category, f"{n:,}", f"{n / max(self.records, 1):.1%}")
        return Group(overview, categories)


class _Stats:
    """Running summary statistics, folded per Arrow batch (vectorised, not per row)."""

    def __init__(self) -> None:
        self.records = 0
        self.by_category: Counter[str] = Counter()
        self.total_amount = 0.0
        self.fraudulent = 0
        self.first_ms: int | None = None
        self.last_ms: int | None = None

    def add(self, batch: pa.RecordBatch, first_ms: int, last_ms: int) -> None:
        self.records += batch.num_rows
        counts = pc.value_counts(batch.column("category"))
        for item in counts.to_pylist():
            self.by_category[item["values"]] += item["counts"]
        self.total_amount += pc.sum(batch.column("total_amount")).as_py() or 0.0
        self.fraudulent += pc.sum(batch.column("is_fraudulent").cast(pa.int64())).as_py() or 0
        self.first_ms = first_ms if self.first_ms is None else min(self.first_ms, first_ms)
        self.last_ms = last_ms if self.last_ms is None else max(self.last_ms, last_ms)


def _ms_to_date(ms: int | None) -> date | None:
    return None if ms is None else (datetime(1970, 1, 1, tzinfo=UTC)
                                    + timedelta(milliseconds=ms)).date()


def _record_batch(rows: list[dict[str, Any]], ms: list[int], schema: pa.Schema) -> pa.RecordBatch:
    """Rows (JSON-ready dicts) -> one Arrow batch; timestamps from epoch ms, not by parsing."""
    n = len(rows)
    event_us = np.asarray(ms, dtype=np.int64) * 1000
    written_at = int(time.time() * 1_000_000)  # processing_timestamp = the write time
    arrays: list[pa.Array] = []
    for field in schema:
        name = field.name
        if name == "event_timestamp":
            arrays.append(pa.array(event_us, type=field.type))
        elif name == "processing_timestamp":
            arrays.append(pa.array(np.full(n, written_at, dtype=np.int64), type=field.type))
        elif name == PARTITION_COLUMN:
            days = (event_us // 86_400_000_000).astype(np.int32)
            arrays.append(pa.array(days, type=pa.int32()).cast(pa.date32()))
        else:
            arrays.append(pa.array([row[name] for row in rows], type=field.type))
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _write(path: Path, batch: pa.RecordBatch) -> int:
    """Append one batch as one Delta commit; returns the table version it created."""
    write_deltalake(str(path), pa.Table.from_batches([batch]), mode="append",
                    partition_by=[PARTITION_COLUMN])
    return DeltaTable(str(path)).version()


def seed_history(
    settings: Settings,
    *,
    records: int = 1_000_000,
    days: int = 90,
    kafka_topic: str | None = None,
    seed: int | None = None,
    progress: bool = True,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    end: datetime | None = None,
    generator: TransactionGenerator | None = None,
) -> SeedSummary:
    """Append `records` historical events over the last `days` days to `stream/transactions`.

    Each chunk of `chunk_rows` is its own Delta commit (atomic on its own), written on a
    background thread while the next chunk is generated: delta-rs does its Parquet work
    without the GIL, so the two cores are both used. With `kafka_topic`, the same records
    also go to Kafka (key `transaction_id`, JSON value with `processing_timestamp` null).
    """
    if records < 0 or days <= 0 or chunk_rows <= 0:
        raise ValueError("need records >= 0, days > 0 and chunk_rows > 0")
    started = time.monotonic()
    gen = generator or TransactionGenerator(seed)
    schema = transactions_arrow_schema()
    path = transactions_table_path(settings)
    path.mkdir(parents=True, exist_ok=True)
    stats = _Stats()

    producer = tracker = None
    if kafka_topic:
        from producers.kafka_generate import ensure_topic, make_producer

        ensure_topic(settings, kafka_topic)
        producer, tracker = make_producer(settings, **{"client.id": "pipeline-seed"})

    from producers.kafka_generate import finish, produce, progress_bar

    version: int | None = None
    pending: Future[int] | None = None
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="delta-write") as writer, \
            progress_bar("seeding", records, enabled=progress, unit="rows") as update:
        rows: list[dict[str, Any]] = []
        ms: list[int] = []
        done = 0

        def flush_chunk() -> None:
            nonlocal pending, version, done
            batch = _record_batch(rows, ms, schema)
            stats.add(batch, ms[0], ms[-1])  # history is chronological
            if pending is not None:
                version = pending.result()  # one write in flight: bounded memory, ordered
            pending = writer.submit(_write, path, batch)
            done += len(rows)
            update(done)
            rows.clear()
            ms.clear()

        for event_ms, event in gen.history_records(records, days, end):
            rows.append(event)
            ms.append(event_ms)
            if producer is not None:
                produce(producer, kafka_topic, event["transaction_id"], orjson.dumps(event))
                if len(rows) % 5_000 == 0:
                    producer.poll(0)
            if len(rows) >= chunk_rows:
                flush_chunk()
        if rows:
            flush_chunk()
        if pending is not None:
            version = pending.result()
            update(done)

    if producer is not None and tracker is not None:
        finish(producer, tracker)
    return SeedSummary(
        records=stats.records,
        by_category=dict(stats.by_category.most_common()),
        first_date=_ms_to_date(stats.first_ms),
        last_date=_ms_to_date(stats.last_ms),
        avg_order_value=round(stats.total_amount / stats.records, 2) if stats.records else 0.0,
        fraud_rate=round(stats.fraudulent / stats.records, 6) if stats.records else 0.0,
        kafka_topic=kafka_topic,
        seconds=round(time.monotonic() - started, 3),
        table_path=str(path),
        table_version=version,
    )
