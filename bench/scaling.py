"""Scaling: ingest and batch time at N, 2N and 4N records; growth per doubling and a
fixed + per-record cost fit (t = a + b*n). The 4N points are the solo ingest and the
turnaround batch of the same run, so only N and 2N cost extra time."""

from __future__ import annotations

import itertools
import math
from typing import Any

from bench.data import History, Topic
from bench.harness import Harness
from bench.ingest import stream_ingest
from bench.stats import linear_fit, percentile
from bench.turnaround import worker_batch


def growth(sizes: list[int], seconds: list[float | None]) -> dict[str, Any]:
    points = [(n, s) for n, s in zip(sizes, seconds, strict=True) if s]
    out: dict[str, Any] = {"sizes": sizes, "seconds": seconds}
    if len(points) < 2:
        return out
    steps = [b[1] / a[1] for a, b in itertools.pairwise(points)]
    out["time_ratio_per_doubling"] = [round(r, 3) for r in steps]
    (n0, s0), (n1, s1) = points[0], points[-1]
    out["mean_time_ratio_per_doubling"] = round(
        (s1 / s0) ** (1 / math.log2(n1 / n0)), 3)
    fit = linear_fit([float(n) for n, _ in points], [s for _, s in points])
    if fit is not None:
        fixed, per_record = fit
        out["fixed_s"] = round(fixed, 3)
        out["per_100k_records_s"] = round(per_record * 100_000, 3)
    return out


def measure_ingest(h: Harness, topics: list[Topic], largest: dict[str, Any] | None
                   ) -> dict[str, Any]:
    runs = [stream_ingest(h, t.name, t.records, label=f"scaling {t.records}") for t in topics]
    sizes = [t.records for t in topics]
    seconds = [r["seconds"] for r in runs]
    if largest is not None:
        sizes.append(int(largest["records"]))
        seconds.append(largest.get("seconds"))
    return {**growth(sizes, seconds), "runs": runs}


def measure_batch(h: Harness, histories: list[History], largest: dict[str, Any] | None,
                  repeats: int = 2) -> dict[str, Any]:
    runs = [[worker_batch(h, hist) for _ in range(repeats)] for hist in histories]
    sizes = [hist.records for hist in histories]
    seconds = [percentile([r["seconds"] for r in rs], 50) for rs in runs]
    if largest is not None:
        sizes.append(int(largest["history_rows"]))
        seconds.append(largest.get("worker_median_s"))
    return {**growth(sizes, seconds), "runs": runs}
