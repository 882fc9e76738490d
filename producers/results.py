"""Reading batch results straight from Delta with delta-rs: no JVM, pages by limit/offset."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from deltalake import DeltaTable


@dataclass
class Page:
    path: str
    version: int
    total: int
    offset: int
    limit: int
    rows: list[dict[str, Any]]

    @property
    def has_more(self) -> bool:
        return self.offset + len(self.rows) < self.total


def read_page(path: str, *, limit: int = 100, offset: int = 0,
              version: int | None = None) -> Page:
    """Rows [offset, offset+limit) of the table, in file order (aggregated tables are
    written as one ordered file, so this is the analysis' own sort order)."""
    table = DeltaTable(path, version=version) if version is not None else DeltaTable(path)
    dataset = table.to_pyarrow_dataset()
    total = dataset.count_rows()
    rows: list[dict[str, Any]] = []
    skip = offset
    if limit > 0 and offset < total:
        # An explicit reader, closed when done: abandoning a half-read batch iterator
        # leaves pyarrow scan threads behind that crash the interpreter at exit.
        reader = dataset.scanner().to_reader()
        try:
            for batch in reader:
                if skip >= batch.num_rows:
                    skip -= batch.num_rows
                    continue
                piece = batch.slice(skip, limit - len(rows))
                skip = 0
                rows.extend(piece.to_pylist())
                if len(rows) >= limit:
                    break
        finally:
            reader.close()
    return Page(path=path, version=table.version(), total=total, offset=offset, limit=limit,
                rows=rows)
