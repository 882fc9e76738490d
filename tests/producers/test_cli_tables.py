"""`pipeline tables`: every table by logical name, version and row count from the Delta log."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pytest
from deltalake import DeltaTable, TableFeatures, write_deltalake
from typer.testing import CliRunner

from contracts.tables import (
    GOLD_DASHBOARD,
    SILVER_TRANSACTIONS,
    STREAM_TABLES,
    batch_aggregated_name,
    batch_raw_name,
)
from producers.cli import app
from producers.cli_tables import list_tables


def _rows(n: int, start: int = 0) -> pa.Table:
    return pa.table({"id": pa.array(range(start, start + n), pa.int64()),
                     "day": pa.array([f"d{i % 3}" for i in range(start, start + n)])})


def _by_name(tables: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {t["name"]: t for t in tables}


def test_an_empty_data_dir_lists_the_stream_tables_not_created(tmp_path: Path) -> None:
    tables = list_tables(tmp_path / "delta")  # not even the directory exists
    assert [t["name"] for t in tables] == [spec.name for spec in STREAM_TABLES]
    assert [t["layer"] for t in tables] == [spec.layer for spec in STREAM_TABLES]
    for table, spec in zip(tables, STREAM_TABLES, strict=True):
        assert (table["version"], table["rows"]) == (None, 0)
        assert table["path"] == str(spec.path((tmp_path / "delta").resolve()))
        assert Path(table["path"]).is_absolute()


def test_version_and_rows_follow_the_current_snapshot(tmp_path: Path) -> None:
    root = tmp_path / "delta"
    silver = str(SILVER_TRANSACTIONS.path(root))
    write_deltalake(silver, _rows(10), partition_by=["day"])         # v0: 10
    write_deltalake(silver, _rows(5, 10), mode="append")             # v1: 15
    DeltaTable(silver).delete("id < 4")                              # v2: 11
    gold = str(GOLD_DASHBOARD.path(root))
    write_deltalake(gold, _rows(100))                                # v0: 100
    write_deltalake(gold, _rows(7), mode="overwrite")                # v1: 7
    DeltaTable(gold).delete("id = 100")                              # v2: no match

    tables = _by_name(list_tables(root))
    assert (tables["silver.transactions"]["version"], tables["silver.transactions"]["rows"]) \
        == (2, 11) == (DeltaTable(silver).version(), DeltaTable(silver).to_pyarrow_table()
                       .num_rows)
    assert (tables["gold.dashboard"]["version"], tables["gold.dashboard"]["rows"]) == (
        DeltaTable(gold).version(), 7)
    assert (tables["bronze.transactions"]["version"], tables["bronze.transactions"]["rows"]) \
        == (None, 0)


def test_batch_tables_are_found_by_layout(tmp_path: Path) -> None:
    root = tmp_path / "delta"
    batches = root / "batches"
    write_deltalake(str(batches / "b2" / "raw"), _rows(30))
    write_deltalake(str(batches / "b2" / "aggregated" / "revenue_by_category"), _rows(4))
    write_deltalake(str(batches / "b2" / "aggregated" / "fraud_summary"), _rows(2))
    write_deltalake(str(batches / "b1" / "aggregated" / "hourly"), _rows(24))  # raw missing
    (batches / "b1" / "raw").mkdir(parents=True)          # a write that never committed
    (batches / "b3" / "aggregated" / "x" / "_delta_log").mkdir(parents=True)  # no commit
    (batches / "README").write_text("not a batch")

    tables = list_tables(root)
    batch = [t for t in tables if t["layer"] == "batch"]
    # By batch id, then raw before the analyses, analyses by name.
    assert [t["name"] for t in batch] == [
        batch_aggregated_name("b1", "hourly"),
        batch_raw_name("b2"),
        batch_aggregated_name("b2", "fraud_summary"),
        batch_aggregated_name("b2", "revenue_by_category"),
        batch_aggregated_name("b3", "x"),
    ]
    found = _by_name(batch)
    assert found["batch.b2.raw"] == {
        "name": "batch.b2.raw", "layer": "batch", "version": 0, "rows": 30,
        "path": str((batches / "b2" / "raw").resolve())}
    assert found["batch.b2.revenue_by_category"]["rows"] == 4
    assert found["batch.b1.hourly"]["rows"] == 24
    assert (found["batch.b3.x"]["version"], found["batch.b3.x"]["rows"]) == (None, 0)
    assert "batch.b1.raw" not in found


def test_files_without_statistics_are_counted_from_their_footers(tmp_path: Path) -> None:
    path = tmp_path / "delta" / "quality" / "metrics"
    write_deltalake(str(path), _rows(12))
    write_deltalake(str(path), _rows(3, 12), mode="append")
    # Another writer may leave the optional per-file stats out: drop them from one commit.
    log = path / "_delta_log" / "00000000000000000000.json"
    actions = [json.loads(line) for line in log.read_text().splitlines()]
    for action in actions:
        action.get("add", {}).pop("stats", None)
    log.write_text("\n".join(json.dumps(a) for a in actions) + "\n")

    assert _by_name(list_tables(tmp_path / "delta"))["quality.metrics"]["rows"] == 15


def test_a_deletion_vector_table_is_counted(tmp_path: Path) -> None:
    path = str(SILVER_TRANSACTIONS.path(tmp_path / "delta"))
    write_deltalake(path, _rows(20))
    DeltaTable(path).alter.add_feature(TableFeatures.DeletionVectors,
                                       allow_protocol_versions_increase=True)
    DeltaTable(path).delete("id >= 15")
    listed = _by_name(list_tables(tmp_path / "delta"))["silver.transactions"]
    assert (listed["version"], listed["rows"]) == (DeltaTable(path).version(), 15)


def test_an_unreadable_table_is_reported_not_fatal(tmp_path: Path) -> None:
    root = tmp_path / "delta"
    path = GOLD_DASHBOARD.path(root)
    write_deltalake(str(path), _rows(3))
    (path / "_delta_log" / "00000000000000000000.json").write_text("{not json\n")
    write_deltalake(str(SILVER_TRANSACTIONS.path(root)), _rows(2))
    tables = _by_name(list_tables(root))
    assert tables["gold.dashboard"]["rows"] is None and tables["gold.dashboard"]["error"]
    assert tables["silver.transactions"]["rows"] == 2


def test_many_batch_tables_are_listed_from_the_logs_only(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "delta"
    for i in range(200):
        write_deltalake(str(root / "batches" / f"b{i:03}" / "raw"), _rows(i + 1))

    def no_data_reads(*_: object, **__: object) -> None:
        raise AssertionError("pipeline tables must not read data files")

    monkeypatch.setattr(DeltaTable, "to_pyarrow_dataset", no_data_reads)
    monkeypatch.setattr(DeltaTable, "to_pyarrow_table", no_data_reads)
    started = time.monotonic()
    tables = list_tables(root)
    elapsed = time.monotonic() - started
    batch = [t for t in tables if t["layer"] == "batch"]
    assert len(batch) == 200
    assert [t["rows"] for t in batch] == list(range(1, 201))  # b000..b199, in name order
    assert elapsed < 20  # about a second here; generous for a busy machine


def _invoke(tmp_path: Path, *args: str) -> Any:
    return CliRunner().invoke(app, ["tables", *args],
                              env={"PIPELINE_DATA_DIR": str(tmp_path)})


def test_the_command_prints_json(tmp_path: Path) -> None:
    write_deltalake(str(SILVER_TRANSACTIONS.path(tmp_path / "delta")), _rows(6))
    write_deltalake(str(tmp_path / "delta" / "batches" / "b1" / "raw"), _rows(2))
    result = _invoke(tmp_path, "--json")
    assert result.exit_code == 0, result.output
    out = orjson.loads(result.stdout)
    assert out["ok"] is True
    assert out["delta_dir"] == str((tmp_path / "delta").resolve())
    assert set(out["tables"][0]) == {"name", "layer", "path", "version", "rows"}
    found = _by_name(out["tables"])
    assert (found["silver.transactions"]["version"], found["silver.transactions"]["rows"]) \
        == (0, 6)
    assert found["batch.b1.raw"]["layer"] == "batch"


def test_the_command_prints_a_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    write_deltalake(str(SILVER_TRANSACTIONS.path(tmp_path / "delta")), _rows(1_234))
    result = _invoke(tmp_path)
    assert result.exit_code == 0, result.output
    assert "silver.transactions" in result.stdout and "1,234" in result.stdout
    assert "gold.dashboard" in result.stdout
