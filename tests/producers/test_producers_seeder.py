"""The historical seeder: schema from the contract, rows in Delta readable by other engines."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from deltalake import DeltaTable

from contracts import silver
from contracts.settings import Settings
from contracts.silver import SILVER_EXTRA_COLUMNS
from contracts.spark_schema import FIELD_RULES, spark_schema_json
from contracts.tables import SILVER_TRANSACTIONS
from contracts.transaction import TransactionEvent
from producers.seeder import LegacyLayout, SeedSummary, seed_history
from producers.silver_arrow import silver_arrow_schema

END = datetime(2025, 3, 1, 6, 0, tzinfo=UTC)
RECORDS = 24_000


def test_arrow_schema_is_silver(tmp_path: Path) -> None:
    schema = silver_arrow_schema()
    assert schema.names == ([r.name for r in FIELD_RULES]
                            + [name for name, _ in SILVER_EXTRA_COLUMNS])
    arrow_for = {"string": pa.string(), "timestamp": pa.timestamp("us", tz="UTC"),
                 "integer": pa.int32(), "long": pa.int64(), "double": pa.float64(),
                 "boolean": pa.bool_(), "date": pa.date32()}
    for rule in FIELD_RULES:
        assert schema.field(rule.name).type == arrow_for[rule.spark_type]
    for name, spark_type in SILVER_EXTRA_COLUMNS:
        assert schema.field(name).type == arrow_for[spark_type], name
    assert schema.field("event_date").type == pa.date32()
    assert schema.field("source_offset").type == pa.int64()
    assert all(f.nullable for f in schema)  # as Spark's schema: both engines append alike
    spark = spark_schema_json(extra=list(SILVER_EXTRA_COLUMNS))
    assert [f["name"] for f in spark["fields"]] == schema.names


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, SeedSummary]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("seed"))
    # Small chunks: several commits, exercising the write-behind thread.
    summary = seed_history(settings, records=RECORDS, days=30, seed=5, progress=False,
                           chunk_rows=5_000, end=END)
    return settings, summary


def _path(settings: Settings) -> Path:
    return settings.delta_dir / "silver" / "transactions"


def _table(settings: Settings) -> DeltaTable:
    return DeltaTable(str(_path(settings)))


def test_seeder_writes_the_rows_partitioned_by_event_date(
        seeded: tuple[Settings, SeedSummary]) -> None:
    settings, summary = seeded
    dt = _table(settings)
    assert dt.metadata().partition_columns == ["event_date"]
    assert dt.version() == summary.table_version == 4  # 5 chunks -> versions 0..4
    table = dt.to_pyarrow_table()
    assert table.num_rows == RECORDS == summary.records
    assert table.schema.names == silver_arrow_schema().names
    for field in silver_arrow_schema():
        assert table.schema.field(field.name).type == field.type, field.name
    # event_date is the UTC date of event_timestamp
    event_dates = pc.cast(table["event_timestamp"], pa.date32())  # UTC instants
    assert pc.all(pc.equal(event_dates, table["event_date"])).as_py()
    assert len({p for p in table["event_date"].to_pylist()}) == 31  # 30 days + partial edge
    assert (_path(settings) / "event_date=2025-02-15").is_dir()


def test_seeded_rows_honour_the_contract(seeded: tuple[Settings, SeedSummary]) -> None:
    settings, _ = seeded
    table = _table(settings).to_pyarrow_table()
    extra = [name for name, _ in SILVER_EXTRA_COLUMNS]
    rows = table.drop_columns(extra).slice(0, 2_000).to_pylist()
    for row in rows:
        event = TransactionEvent.model_validate(row)
        assert event.processing_timestamp is not None
        assert event.processing_timestamp >= event.event_timestamp
        assert event.batch_id is None
    assert pc.count_distinct(table["transaction_id"]).as_py() == RECORDS
    assert pc.min(table["event_timestamp"]).as_py() >= END - timedelta(days=30)
    assert pc.max(table["event_timestamp"]).as_py() < END


def test_seeded_rows_carry_silver_enrichments_and_lineage(
        seeded: tuple[Settings, SeedSummary]) -> None:
    settings, summary = seeded
    assert summary.table_path == str(SILVER_TRANSACTIONS.path(settings.delta_dir))
    table = _table(settings).to_pyarrow_table()
    for row in table.slice(0, 3_000).to_pylist():
        expected = silver.time_enrichments(row["event_timestamp"])
        assert {k: row[k] for k in expected} == expected
        assert row["amount_band"] == silver.amount_band(row["total_amount"])
        assert (row["source_topic"], row["source_partition"], row["source_offset"]) == (
            None, None, None)
    # One ingest_run per seeding chunk: the run's app id and the chunk's app version.
    runs = Counter(table["ingest_run"].to_pylist())
    assert runs == {silver.ingest_run(summary.app_id, chunk): 5_000 if chunk < 4 else 4_000
                    for chunk in range(5)}
    assert table["source_offset"].null_count == table.num_rows


def test_summary_matches_the_table(seeded: tuple[Settings, SeedSummary]) -> None:
    settings, summary = seeded
    table = _table(settings).to_pyarrow_table()
    assert summary.by_category == dict(Counter(table["category"].to_pylist()))
    assert summary.avg_order_value == pytest.approx(pc.mean(table["total_amount"]).as_py(),
                                                    abs=0.01)
    fraud = pc.sum(table["is_fraudulent"].cast(pa.int64())).as_py() / RECORDS
    assert summary.fraud_rate == pytest.approx(fraud, abs=1e-6)  # rounded to 6 places
    assert 0.01 < summary.fraud_rate < 0.03
    assert summary.first_date == date(2025, 1, 30)
    assert summary.last_date == date(2025, 3, 1)
    assert summary.to_json_dict()["first_date"] == "2025-01-30"
    assert summary.kafka_topic is None


def test_weekend_seasonality_visible_in_the_table(seeded: tuple[Settings, SeedSummary]) -> None:
    settings, _ = seeded
    table = _table(settings).to_pyarrow_table(columns=["event_date", "category"])
    weekend = pc.greater_equal(pc.day_of_week(table["event_date"]), 5)  # Monday = 0

    def share(mask: pa.ChunkedArray, category: str) -> float:
        cats = table["category"].filter(mask)
        return pc.sum(pc.equal(cats, category).cast(pa.int64())).as_py() / len(cats)

    weekday = pc.invert(weekend)
    assert share(weekend, "grocery") > 1.1 * share(weekday, "grocery")
    assert share(weekday, "electronics") > 1.2 * share(weekend, "electronics")


def test_readable_with_duckdb(seeded: tuple[Settings, SeedSummary]) -> None:
    duckdb = pytest.importorskip("duckdb")
    settings, _ = seeded
    path = _path(settings)
    con = duckdb.connect()
    try:
        count, days = con.sql(  # DuckDB's own Delta reader, when its extension is available
            f"SELECT count(*), count(DISTINCT event_date) FROM delta_scan('{path}')").fetchone()
    except duckdb.Error:
        # No network for the extension: read the table's current Parquet files directly.
        files = [uri.removeprefix("file://") for uri in _table(settings).file_uris()]
        count, days = con.execute(
            "SELECT count(*), count(DISTINCT event_date) "
            "FROM read_parquet(?, hive_partitioning = true)", [files]).fetchone()
    assert (count, days) == (RECORDS, 31)


def test_a_second_seed_appends(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    first = seed_history(settings, records=3_000, days=10, seed=1, progress=False, end=END)
    second = seed_history(settings, records=2_000, days=10, seed=2, progress=False, end=END)
    assert (first.table_version, second.table_version) == (0, 1)
    table = _table(settings).to_pyarrow_table(columns=["transaction_id"])
    assert table.num_rows == 5_000
    assert pc.count_distinct(table["transaction_id"]).as_py() == 5_000


def test_seeding_nothing_writes_nothing(tmp_path: Path) -> None:
    summary = seed_history(Settings(data_dir=tmp_path), records=0, progress=False)
    assert summary.records == 0 and summary.first_date is None and summary.table_version is None


def test_summary_renders(seeded: tuple[Settings, SeedSummary]) -> None:
    from rich.console import Console

    console = Console(record=True, width=120)
    console.print(seeded[1].render())
    text = console.export_text()
    assert "grocery" in text and "fraud rate" in text


def test_seeding_an_old_layout_asks_for_the_worker_first(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    (settings.delta_dir / "stream" / "transactions" / "_delta_log").mkdir(parents=True)
    with pytest.raises(LegacyLayout, match="start `pipeline worker` once"):
        seed_history(settings, records=10, days=1, seed=1)
    assert not SILVER_TRANSACTIONS.path(settings.delta_dir).exists()
