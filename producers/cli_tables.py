"""`pipeline tables`: every Delta table by logical name (no worker needed).

Reads the data directory with delta-rs only: each table's current version and row count
come from its transaction log (the `num_records` statistics of the snapshot's files), so
listing hundreds of batch results reads no data files.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer

from contracts.tables import (
    BATCH_LAYER,
    BATCHES_DIR,
    STREAM_TABLES,
    batch_aggregated_name,
    batch_raw_name,
)

# Opening a table replays its log in Rust with the GIL released: a few threads overlap
# that file I/O, which is most of the time of a listing of many small batch tables.
_READERS = 4


@dataclass(frozen=True)
class TableEntry:
    name: str
    layer: str
    path: Path


def table_entries(delta_root: Path) -> list[TableEntry]:
    """The stream's tables (always, created or not), then every batch result table on
    disk: per batch id, in name order, `raw` and then its analyses in name order."""
    root = delta_root.resolve()
    entries = [TableEntry(spec.name, spec.layer, spec.path(root)) for spec in STREAM_TABLES]
    for batch_id, batch_dir in _subdirs(root / BATCHES_DIR):
        raw = batch_dir / "raw"
        if _is_delta(raw):
            entries.append(TableEntry(batch_raw_name(batch_id), BATCH_LAYER, raw))
        for analysis, path in _subdirs(batch_dir / "aggregated"):
            if _is_delta(path):
                entries.append(TableEntry(batch_aggregated_name(batch_id, analysis),
                                          BATCH_LAYER, path))
    return entries


def _subdirs(parent: Path) -> Iterator[tuple[str, Path]]:
    """(name, path) of the directories in `parent`, sorted by name; none if it is absent.

    `scandir` rather than `iterdir` + `is_dir`: the entry types come with the listing,
    one system call per directory instead of one per entry.
    """
    try:
        with os.scandir(parent) as listing:
            found = sorted((e.name, Path(e.path)) for e in listing
                           if e.is_dir() and not e.name.startswith(("_", ".")))
    except (FileNotFoundError, NotADirectoryError):
        return iter(())
    return iter(found)


def _is_delta(path: Path) -> bool:
    # A directory without a log is a write that never committed, not a table.
    return (path / "_delta_log").is_dir()


def snapshot(path: Path) -> dict[str, Any]:
    """`version` and `rows` of the table's current snapshot; `version` None and `rows` 0
    for a table not created yet, `rows` None and an `error` for one delta-rs cannot read.

    Rows are the sum of the add actions' `num_records`: after a delete or an overwrite
    the removed files are no longer in the snapshot, so the sum is the table's row count.
    Two exceptions cost a little more, still without reading data: rows a deletion
    vector masks are subtracted (only for tables with that feature on), and files written
    without statistics are counted from their Parquet footers.
    """
    import pyarrow as pa
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    if not _is_delta(path):
        return {"version": None, "rows": 0}
    try:
        table = DeltaTable(str(path))
        counts = pa.table(table.get_add_actions()).column("num_records")
        if counts.null_count:
            rows = table.to_pyarrow_dataset().count_rows()
        else:
            rows = sum(counts.to_pylist()) - _deleted_rows(table)
        return {"version": table.version(), "rows": rows}
    except TableNotFoundError:  # a log directory with no commit in it yet
        return {"version": None, "rows": 0}
    except Exception as exc:  # one unreadable table must not hide the rest
        return {"version": None, "rows": None, "error": f"{type(exc).__name__}: {exc}"}


def _deleted_rows(table: Any) -> int:
    """Rows masked by the snapshot's deletion vectors (0 unless the table may have some)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if "deletionVectors" not in (table.protocol().reader_features or []):
        return 0
    deleted = 0
    for batch in pa.RecordBatchReader.from_stream(table.deletion_vectors()):
        keep = pc.list_flatten(batch.column("selection_vector"))
        deleted += len(keep) - (pc.sum(keep).as_py() or 0)
    return deleted


def list_tables(delta_root: Path) -> list[dict[str, Any]]:
    """One dict per table (`name`, `layer`, absolute `path`, `version`, `rows`)."""
    entries = table_entries(delta_root)
    with ThreadPoolExecutor(max_workers=_READERS, thread_name_prefix="delta-log") as pool:
        snapshots = list(pool.map(lambda e: snapshot(e.path), entries))
    return [{"name": e.name, "layer": e.layer, "path": str(e.path), **s}
            for e, s in zip(entries, snapshots, strict=True)]


def register(app: typer.Typer) -> None:
    """Add this module's commands to the `pipeline` app."""

    @app.command("tables")
    def tables(as_json: bool = typer.Option(False, "--json",
                                            help="Print one JSON object on stdout.")) -> None:
        """List every Delta table by logical name, with its version and row count
        (read from the Delta logs; no worker needed)."""
        # Imported here: producers.cli imports this module at its bottom.
        from producers.cli import _settings
        from producers.output import print_json, print_table, stderr

        delta_root = _settings().delta_dir.resolve()
        found = list_tables(delta_root)
        if as_json:
            print_json({"ok": True, "delta_dir": str(delta_root), "tables": found})
            return
        print_table([{**t, "rows": _count(t["rows"]), "path": _relative(t["path"], delta_root)}
                     for t in found],
                    columns=["name", "layer", "version", "rows", "path"],
                    title=f"Delta tables in {delta_root}")
        for t in found:
            if "error" in t:
                stderr.print(f"[yellow]{t['name']}:[/] unreadable: {t['error']}")


def _count(rows: int | None) -> str | None:
    return None if rows is None else f"{rows:,}"


def _relative(path: str, root: Path) -> str:
    # The title names the root; the rows stay readable with the relative part only.
    return os.path.relpath(path, root)
