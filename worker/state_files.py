"""The worker's small state files next to its checkpoints (pending downstream work, DLQ
copies owed, the silver follower's mark, the newest event time): each written whole or
not at all."""

from __future__ import annotations

import os
from pathlib import Path


def write_atomic(path: Path, data: bytes) -> None:
    """Replace `path` with `data`: a crash leaves the old content or the new, never half,
    and the new content is on disk when this returns."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
