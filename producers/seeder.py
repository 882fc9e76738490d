"""Historical seeder (docs/generator.md): months of transactions appended to silver.

Written with delta-rs from Arrow record batches, no Spark or JVM, into silver.transactions,
the table the worker's stream appends to, so batches over history work at once. Rows carry
silver's whole schema (`producers.silver_arrow.silver_arrow_schema`, identical to the one
Spark writes): the contract columns, the enrichments computed the way silver defines them,
null Kafka coordinates (seeded rows never were Kafka records) and the seeding chunk as
`ingest_run`.
"""

from __future__ import annotations

import functools
import hashlib
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
from deltalake import CommitProperties, DeltaTable, Transaction, write_deltalake
from deltalake.exceptions import TableNotFoundError

from contracts.settings import Settings
from contracts.silver import PARTITION_COLUMN, SEED_COMMIT_KEY, ingest_run
from contracts.tables import SILVER_TRANSACTIONS
from producers.generator import TransactionGenerator
from producers.silver_arrow import silver_arrow_schema, silver_enrichment_arrays

DEFAULT_CHUNK_ROWS = 100_000
# Commit metadata of a seeding commit: which run wrote it, and that run's end time.
_META_APP_ID = SEED_COMMIT_KEY
_META_END_MS = "pipeline.seed.end_ms"
_KAFKA_COORDINATES = ("source_topic", "source_partition", "source_offset")


def silver_table_path(settings: Settings) -> Path:
    return SILVER_TRANSACTIONS.path(settings.delta_dir)


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
    seed: int | None = None        # the generator's seed: give it again to repeat the run
    app_id: str = ""               # the run's Delta app id (see seed_app_id)
    skipped_records: int = 0       # rows an earlier identical run had written already

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


def _record_batch(rows: list[dict[str, Any]], ms: list[int], schema: pa.Schema,
                  run: str) -> pa.RecordBatch:
    """Rows (JSON-ready dicts) -> one silver batch; timestamps from epoch ms, not by parsing.

    The contract columns come from the rows, the enrichments from the whole
    `event_timestamp`/`total_amount` columns at once, and lineage says "seeded by `run`".
    """
    n = len(rows)
    event_us = np.asarray(ms, dtype=np.int64) * 1000
    written_at = int(time.time() * 1_000_000)  # processing_timestamp = the write time
    columns: dict[str, pa.Array] = {
        "event_timestamp": pa.array(event_us, type=schema.field("event_timestamp").type),
        "processing_timestamp": pa.array(np.full(n, written_at, dtype=np.int64),
                                         type=schema.field("processing_timestamp").type),
        "ingest_run": pa.array([run] * n, type=pa.string()),
    }
    columns["total_amount"] = pa.array([row["total_amount"] for row in rows],
                                       type=schema.field("total_amount").type)
    columns.update(silver_enrichment_arrays(columns["event_timestamp"],
                                            columns["total_amount"]))
    for name in _KAFKA_COORDINATES:  # seeded rows never were Kafka records
        columns[name] = pa.nulls(n, type=schema.field(name).type)
    arrays = [columns[field.name] if field.name in columns
              else pa.array([row[field.name] for row in rows], type=field.type)
              for field in schema]
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _write(path: Path, batch: pa.RecordBatch, app_id: str, chunk: int, end_ms: int) -> int:
    """Append one batch as one Delta commit; returns the table version it created.

    The commit carries the app transaction (`app_id`, chunk number), which is how a later
    run with the same arguments knows this chunk is in the table already, and the run's
    end time, so that a resumed run generates exactly the same rows.
    """
    write_deltalake(
        str(path), pa.Table.from_batches([batch]), mode="append",
        partition_by=[PARTITION_COLUMN],
        commit_properties=CommitProperties(
            app_transactions=[Transaction(app_id, chunk)],
            custom_metadata={_META_APP_ID: app_id, _META_END_MS: str(end_ms)}),
    )
    return DeltaTable(str(path)).version()


def seed_app_id(records: int, days: int, seed: int, chunk_rows: int,
                end: datetime | None) -> str:
    """The Delta app id of one seeding run: a hash of everything that decides its rows.

    `end` counts only when the caller pins it; "ending now" is the same run whenever it
    is repeated, so running the same command twice writes its rows once.
    """
    key = orjson.dumps({"v": 1, "records": records, "days": days, "seed": seed,
                        "chunk_rows": chunk_rows,
                        "end_ms": None if end is None else _epoch_ms(end)})
    return f"pipeline-seed-{hashlib.sha256(key).hexdigest()[:24]}"


def _epoch_ms(at: datetime) -> int:
    at = at.replace(tzinfo=UTC) if at.tzinfo is None else at
    return int(at.timestamp() * 1000)


def _progress_of(path: Path, app_id: str) -> tuple[int | None, int | None]:
    """(last chunk committed by `app_id`, that run's end in epoch ms), or Nones."""
    try:
        table = DeltaTable(str(path))
    except TableNotFoundError:
        return None, None
    done = table.transaction_version(app_id)
    if done is None:
        return None, None
    for commit in table.history():
        if commit.get(_META_APP_ID) == app_id and _META_END_MS in commit:
            return done, int(commit[_META_END_MS])
    return done, None


class LegacyLayout(RuntimeError):
    """The data directory still has the table layout from before the medallion."""


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
    """Append `records` historical events over the last `days` days to silver.transactions.

    Each chunk of `chunk_rows` is its own Delta commit (atomic on its own), written on a
    background thread while the next chunk is generated: delta-rs does its Parquet work
    without the GIL, so the two cores are both used. With `kafka_topic`, the same records
    also go to Kafka (key `transaction_id`, JSON value with `processing_timestamp` null).

    Idempotent per (records, days, seed, chunk_rows, pinned `end`): each commit records
    its chunk number under the run's Delta app id, so the same run again writes only the
    chunks not yet in the table (none after a complete run; the rest, identical to what
    the first run would have written, after an interrupted one). Kafka gets the records
    of the chunks written, so a complete re-run produces nothing either.
    """
    if records < 0 or days <= 0 or chunk_rows <= 0:
        raise ValueError("need records >= 0, days > 0 and chunk_rows > 0")
    started = time.monotonic()
    gen = generator or TransactionGenerator(seed)
    schema = silver_arrow_schema()
    path = silver_table_path(settings)
    legacy = settings.delta_dir / "stream" / "transactions"
    if (legacy / "_delta_log").is_dir() and not path.exists():
        # The worker moves the old table to silver on its first start; seeding first would
        # leave two histories side by side.
        raise LegacyLayout(f"{legacy} is the transactions table of an older version: start "
                           "`pipeline worker` once (it moves the table to "
                           f"{path}), then seed")
    app_id = seed_app_id(records, days, gen.seed, chunk_rows, end)
    done_chunk, done_end_ms = _progress_of(path, app_id)
    last_chunk = (records - 1) // chunk_rows  # -1 when there is nothing to write
    skip_below = 0 if done_chunk is None else done_chunk + 1  # chunks before it are in
    if end is None:
        # Whole seconds: the end is stored as epoch ms and must give the same rows again.
        end = (datetime.fromtimestamp(done_end_ms // 1000, UTC) if done_end_ms is not None
               else datetime.now(UTC).replace(microsecond=0))
    end_ms = _epoch_ms(end)
    stats = _Stats()
    skipped = min(records, skip_below * chunk_rows)
    summary = functools.partial(
        SeedSummary, kafka_topic=kafka_topic, table_path=str(path), seed=gen.seed,
        app_id=app_id, skipped_records=skipped)
    if skip_below > last_chunk:
        # The whole run is in the table already: write nothing, produce nothing.
        return summary(records=0, by_category={}, first_date=None, last_date=None,
                       avg_order_value=0.0, fraud_rate=0.0,
                       seconds=round(time.monotonic() - started, 3),
                       table_version=None if done_chunk is None
                       else DeltaTable(str(path)).version())
    path.mkdir(parents=True, exist_ok=True)

    producer = tracker = None
    if kafka_topic:
        from producers.kafka_generate import ensure_topic, make_tracked_producer

        ensure_topic(settings, kafka_topic)
        producer, tracker = make_tracked_producer(settings, **{"client.id": "pipeline-seed"})

    from producers.kafka_generate import finish, produce, progress_bar

    version: int | None = None
    pending: Future[int] | None = None
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="delta-write") as writer, \
            progress_bar("seeding", records, enabled=progress, unit="rows") as update:
        rows: list[dict[str, Any]] = []
        ms: list[int] = []
        done = 0
        chunk = 0

        def flush_chunk() -> None:
            nonlocal pending, version, done, chunk
            if chunk >= skip_below:
                batch = _record_batch(rows, ms, schema, ingest_run(app_id, chunk))
                stats.add(batch, ms[0], ms[-1])  # history is chronological
                if pending is not None:
                    version = pending.result()  # one write in flight: bounded memory, ordered
                pending = writer.submit(_write, path, batch, app_id, chunk, end_ms)
            # else: generated only to keep the random sequence, and so the rows, the same
            done += len(rows)
            chunk += 1
            update(done)
            rows.clear()
            ms.clear()

        for event_ms, event in gen.history_records(records, days, end):
            rows.append(event)
            ms.append(event_ms)
            if producer is not None and chunk >= skip_below:
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
    return summary(
        records=stats.records,
        by_category=dict(stats.by_category.most_common()),
        first_date=_ms_to_date(stats.first_ms),
        last_date=_ms_to_date(stats.last_ms),
        avg_order_value=round(stats.total_amount / stats.records, 2) if stats.records else 0.0,
        fraud_rate=round(stats.fraudulent / stats.records, 6) if stats.records else 0.0,
        seconds=round(time.monotonic() - started, 3),
        table_version=version,
    )
