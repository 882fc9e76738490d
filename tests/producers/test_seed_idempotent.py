"""`pipeline seed` with the same arguments twice writes its rows once; an interrupted run,
repeated, completes with exactly the rows the first run would have written."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pyarrow.compute as pc
import pytest
from deltalake import DeltaTable

import producers.seeder as seeder
from contracts.settings import Settings
from contracts.silver import ingest_run
from contracts.tables import SILVER_TRANSACTIONS
from producers.generator import TransactionGenerator
from producers.seeder import seed_app_id, seed_history

RECORDS, DAYS, CHUNK = 3_000, 5, 1_000


def _table(settings: Settings) -> DeltaTable:
    return DeltaTable(str(SILVER_TRANSACTIONS.path(settings.delta_dir)))


def _ids(settings: Settings) -> list[str]:
    return _table(settings).to_pyarrow_table(columns=["transaction_id"])[
        "transaction_id"].to_pylist()


def test_the_same_seed_twice_writes_the_rows_once(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    first = seed_history(settings, records=RECORDS, days=DAYS, seed=7, progress=False,
                         chunk_rows=CHUNK)
    assert (first.records, first.skipped_records, first.seed) == (RECORDS, 0, 7)
    version = _table(settings).version()
    second = seed_history(settings, records=RECORDS, days=DAYS, seed=7, progress=False,
                          chunk_rows=CHUNK)
    assert (second.records, second.skipped_records) == (0, RECORDS)
    assert second.app_id == first.app_id
    assert _table(settings).version() == version == second.table_version  # no new commit
    ids = _ids(settings)
    assert len(ids) == len(set(ids)) == RECORDS


def test_other_arguments_are_another_run(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    seed_history(settings, records=1_000, days=DAYS, seed=7, progress=False)
    more = seed_history(settings, records=1_000, days=DAYS + 1, seed=7, progress=False)
    # No --seed: a fresh random seed each time, so every run appends.
    unseeded = [seed_history(settings, records=500, days=DAYS, progress=False)
                for _ in range(2)]
    assert more.records == 1_000 and [s.records for s in unseeded] == [500, 500]
    assert unseeded[0].seed != unseeded[1].seed
    assert len(_ids(settings)) == 3_000


def test_the_app_id_covers_what_decides_the_rows() -> None:
    base = seed_app_id(RECORDS, DAYS, 7, CHUNK, None)
    assert base == seed_app_id(RECORDS, DAYS, 7, CHUNK, None)
    end = datetime(2025, 3, 1, tzinfo=UTC)
    others = {seed_app_id(RECORDS + 1, DAYS, 7, CHUNK, None),
              seed_app_id(RECORDS, DAYS + 1, 7, CHUNK, None),
              seed_app_id(RECORDS, DAYS, 8, CHUNK, None),
              seed_app_id(RECORDS, DAYS, 7, CHUNK + 1, None),
              seed_app_id(RECORDS, DAYS, 7, CHUNK, end)}
    assert base not in others and len(others) == 5


def test_an_interrupted_seed_completes_with_the_same_rows(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings(data_dir=tmp_path)
    real_write = seeder._write

    def crash_on_third_chunk(path: Path, batch: object, app_id: str, chunk: int,
                             end_ms: int) -> int:
        if chunk == 2:
            raise OSError("disk full")
        return real_write(path, batch, app_id, chunk, end_ms)  # type: ignore[arg-type]

    monkeypatch.setattr(seeder, "_write", crash_on_third_chunk)
    with pytest.raises(OSError, match="disk full"):
        seed_history(settings, records=RECORDS, days=DAYS, seed=11, progress=False,
                     chunk_rows=CHUNK)
    assert len(_ids(settings)) == 2 * CHUNK
    monkeypatch.setattr(seeder, "_write", real_write)

    resumed = seed_history(settings, records=RECORDS, days=DAYS, seed=11, progress=False,
                           chunk_rows=CHUNK)
    assert (resumed.records, resumed.skipped_records) == (CHUNK, 2 * CHUNK)
    # Exactly the rows one uninterrupted run would have written, with the first run's end.
    end_ms = next(int(c[seeder._META_END_MS]) for c in _table(settings).history()
                  if seeder._META_END_MS in c)
    end = datetime.fromtimestamp(end_ms / 1000, UTC)
    expected = [event["transaction_id"] for _, event in
                TransactionGenerator(11).history_records(RECORDS, DAYS, end)]
    assert sorted(_ids(settings)) == sorted(expected)
    # The resumed chunk is tagged like the first run's: one ingest_run per chunk.
    runs = _table(settings).to_pyarrow_table(columns=["ingest_run"])["ingest_run"]
    assert set(runs.to_pylist()) == {ingest_run(resumed.app_id, c) for c in range(3)}
    table = _table(settings).to_pyarrow_table(columns=["event_timestamp"])
    assert pc.max(table["event_timestamp"]).as_py() < end
    again = seed_history(settings, records=RECORDS, days=DAYS, seed=11, progress=False,
                         chunk_rows=CHUNK)
    assert again.records == 0 and len(_ids(settings)) == RECORDS
