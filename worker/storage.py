"""Delta and checkpoint locations under PIPELINE_DATA_DIR.

Some path segments come from commands (batch ids, a stream's topic in its checkpoint
name). Each such segment is checked to be one plain name, and the joined path to stay
under the data directory, before anything is created: a bad one raises `UnsafePath`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from contracts.settings import Settings
from contracts.tables import (
    BRONZE_TRANSACTIONS,
    GOLD_CUSTOMER_ACTIVITY,
    GOLD_DASHBOARD,
    GOLD_FRAUD_SCORES,
    GOLD_HOURLY_SUMMARY,
    GOLD_REGION_ACTIVITY,
    GOLD_STORE_ACTIVITY,
    QUALITY_METRICS,
    QUARANTINE_TRANSACTIONS,
    SILVER_TRANSACTIONS,
)

# One file name of the characters ids and topic names may use; never "." or "..".
_SEGMENT = re.compile(r"[A-Za-z0-9._-]{1,255}")


class UnsafePath(ValueError):
    """A path derived from input would leave the data directory, or is not one name."""


class StoragePaths:
    def __init__(self, settings: Settings) -> None:
        self.root = settings.data_dir.resolve()
        self.delta = self.root / "delta"

    # The medallion's tables, by their logical names (contracts.tables).
    @property
    def bronze(self) -> Path:
        return BRONZE_TRANSACTIONS.path(self.delta)

    @property
    def silver(self) -> Path:
        return SILVER_TRANSACTIONS.path(self.delta)

    @property
    def transactions(self) -> Path:
        """The transactions that batches and the dashboard read: silver."""
        return self.silver

    @property
    def quarantine(self) -> Path:
        return QUARANTINE_TRANSACTIONS.path(self.delta)

    @property
    def quality_metrics(self) -> Path:
        return QUALITY_METRICS.path(self.delta)

    @property
    def gold_dashboard(self) -> Path:
        return GOLD_DASHBOARD.path(self.delta)

    @property
    def stream_aggregations(self) -> Path:
        return self.gold_dashboard

    @property
    def fraud_scores(self) -> Path:
        return GOLD_FRAUD_SCORES.path(self.delta)

    @property
    def store_activity(self) -> Path:
        return GOLD_STORE_ACTIVITY.path(self.delta)

    @property
    def customer_activity(self) -> Path:
        return GOLD_CUSTOMER_ACTIVITY.path(self.delta)

    @property
    def region_activity(self) -> Path:
        return GOLD_REGION_ACTIVITY.path(self.delta)

    @property
    def hourly_summary(self) -> Path:
        return GOLD_HOURLY_SUMMARY.path(self.delta)

    @property
    def models(self) -> Path:
        """Trained fraud models, one directory per version (`models/fraud/<version>`)."""
        return self.root / "models" / "fraud"

    def batch_raw(self, batch_id: str) -> Path:
        return self._inside(self.delta / "batches", batch_id, "raw")

    def batch_aggregated(self, batch_id: str, analysis: str) -> Path:
        return self._inside(self.delta / "batches", batch_id, "aggregated", analysis)

    def checkpoint(self, query_name: str) -> Path:
        return self._inside(self.root / "checkpoints", query_name)

    def _inside(self, base: Path, *segments: str) -> Path:
        """`base / segments`, or `UnsafePath`. Nothing is created here.

        The check is lexical (normpath, not resolve): segments are plain names, so they
        cannot bring in a symlink, and a deployment may link `delta/` or `checkpoints/`
        to another disk on purpose.
        """
        for segment in segments:
            if not (isinstance(segment, str) and _SEGMENT.fullmatch(segment)
                    and segment not in (".", "..")):
                raise UnsafePath(f"{segment!r} is not a plain file name")
        path = Path(os.path.normpath(base.joinpath(*segments)))
        if not path.is_relative_to(self.root) or path == self.root:
            raise UnsafePath(f"{path} is outside the data directory {self.root}")
        return path
