"""Delta and checkpoint locations under PIPELINE_DATA_DIR (DESIGN.md §5)."""

from __future__ import annotations

from pathlib import Path

from contracts.settings import Settings


class StoragePaths:
    def __init__(self, settings: Settings) -> None:
        self.root = settings.data_dir.resolve()
        self.delta = self.root / "delta"

    @property
    def transactions(self) -> Path:
        return self.delta / "stream" / "transactions"

    @property
    def quarantine(self) -> Path:
        return self.delta / "stream" / "quarantine"

    @property
    def stream_aggregations(self) -> Path:
        return self.delta / "stream" / "stream_aggregations"

    def batch_raw(self, batch_id: str) -> Path:
        return self.delta / "batches" / batch_id / "raw"

    def batch_aggregated(self, batch_id: str, analysis: str) -> Path:
        return self.delta / "batches" / batch_id / "aggregated" / analysis

    def checkpoint(self, query_name: str) -> Path:
        return self.root / "checkpoints" / query_name
