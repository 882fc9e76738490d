"""Following a Delta table's commits straight from `_delta_log` (no JVM, no full scan).

Each commit file gives the rows it added (the `numRecords` statistic of its add actions,
written by Spark and delta-rs alike) and, by its modification time, the moment the
version became readable: that is what freshness and throughput are timed against.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote

import orjson
import pyarrow as pa
import pyarrow.parquet as pq


@dataclass(frozen=True)
class Commit:
    version: int
    readable_at: float          # commit file mtime (wall clock, seconds)
    operation: str
    rows_added: int
    files: tuple[str, ...] = field(default=())   # data files added, relative to the table


def _log_version(name: str) -> int | None:
    stem, dot, ext = name.partition(".")
    return int(stem) if ext == "json" and dot and stem.isdigit() else None


class DeltaTail:
    """Commits of one table after a starting point; the table may not exist yet."""

    def __init__(self, table: Path, *, from_end: bool = True) -> None:
        self.table = table
        self.log = table / "_delta_log"
        self.next_version = self._current_version() + 1 if from_end else 0
        self.commits: list[Commit] = []

    def _current_version(self) -> int:
        try:
            versions = [v for n in os.listdir(self.log) if (v := _log_version(n)) is not None]
        except FileNotFoundError:
            return -1
        return max(versions, default=-1)

    def poll(self) -> list[Commit]:
        """New commits since the last poll, in version order."""
        new: list[Commit] = []
        while True:
            path = self.log / f"{self.next_version:020d}.json"
            try:
                stat = path.stat()
                raw = path.read_bytes()
            except FileNotFoundError:
                break
            operation, rows, files = "", 0, []
            for line in raw.splitlines():
                if not line.strip():
                    continue
                action = orjson.loads(line)
                if "commitInfo" in action:
                    operation = action["commitInfo"].get("operation", "")
                elif "add" in action:
                    add = action["add"]
                    files.append(unquote(add["path"]))
                    stats = add.get("stats")
                    if stats:
                        rows += int(orjson.loads(stats).get("numRecords", 0))
            new.append(Commit(self.next_version, stat.st_mtime, operation, rows, tuple(files)))
            self.next_version += 1
        self.commits.extend(new)
        return new

    @property
    def rows(self) -> int:
        return sum(c.rows_added for c in self.commits)

    def read(self, commit: Commit, columns: list[str]) -> pa.Table:
        tables = [pq.read_table(self.table / f, columns=columns) for f in commit.files]
        return pa.concat_tables(tables) if tables else pa.table({c: [] for c in columns})


def wait_rows(tails: list[DeltaTail], expected: int, timeout: float,
              interval: float = 0.1) -> tuple[int, float | None]:
    """Poll until the tails together added `expected` rows; (rows, readable_at of the
    commit that completed them, or None on timeout)."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        for tail in tails:
            for commit in tail.poll():
                last = commit.readable_at if last is None else max(last, commit.readable_at)
        rows = sum(t.rows for t in tails)
        if rows >= expected:
            return rows, last
        if time.monotonic() > deadline:
            return rows, None
        time.sleep(interval)


@dataclass
class LayerDone:
    rows: int = 0
    done_at: float | None = None   # readable_at of the commit that completed the layer


def wait_layers(layers: Mapping[str, list[DeltaTail]],
                targets: Mapping[str, int | Callable[[], int]], timeout: float,
                interval: float = 0.1) -> dict[str, LayerDone]:
    """`wait_rows` for several layers at once: poll every tail until each layer's tails
    together added its target rows (a callable target is asked again at every poll: it
    may shrink as the worker reports rows it skipped). Per layer: its rows and the
    readable_at of the commit that completed it, or None on timeout."""
    deadline = time.monotonic() + timeout
    out = {name: LayerDone() for name in layers}
    last: dict[str, float | None] = dict.fromkeys(layers)
    while True:
        for name, tails in layers.items():
            for tail in tails:
                for commit in tail.poll():
                    prev = last[name]
                    last[name] = commit.readable_at if prev is None else max(
                        prev, commit.readable_at)
            done = out[name]
            done.rows = sum(t.rows for t in tails)
            target = targets[name]
            if done.done_at is None and done.rows >= (target() if callable(target) else target):
                done.done_at = last[name]
        if all(d.done_at is not None for d in out.values()) or time.monotonic() > deadline:
            return out
        time.sleep(interval)
