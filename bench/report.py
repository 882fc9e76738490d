"""Results out: `bench/results.json`, a rich table on the terminal, `docs/benchmarks.md`
(its text: bench/report_doc.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table

from bench.config import BenchConfig
from bench.profiling import merge
from bench.report_doc import render_markdown
from bench.report_fmt import Headline
from bench.report_fmt import fmt as _fmt
from bench.report_fmt import get as _get
from bench.report_fmt import ratio as _ratio

HERE = Path(__file__).resolve().parent
RESULTS_PATH = HERE / "results.json"
DOC_PATH = HERE.parent / "docs" / "benchmarks.md"

# Freshness per layer: (figure, results key, older name of the key).
FRESHNESS = (
    ("produce → readable in bronze.transactions", "produce_to_bronze_s", None),
    ("produce → readable in silver.transactions", "produce_to_silver_s", "produce_to_readable_s"),
    ("produce → gold.dashboard window upserted", "produce_to_dashboard_s", None),
    ("produce → scored in gold.fraud_scores", "produce_to_fraud_scores_s", None),
    ("produce → window updated in gold.store_activity", "produce_to_store_activity_s", None),
    ("produce → window updated in gold.customer_activity", "produce_to_customer_activity_s",
     None),
    ("produce → window updated in gold.region_activity", "produce_to_region_activity_s",
     None),
    ("produce → window updated in gold.hourly_summary", "produce_to_hourly_summary_s", None),
)


def _ingest(r: dict[str, Any]) -> list[Headline]:
    ing = r.get("ingest_worker") or {}
    every = ing.get("records_per_s")  # every layer written
    bronze = _get(ing, "layers", "bronze", "records_per_s")
    silver = _get(ing, "layers", "silver", "records_per_s")
    raw = _get(r, "raw_consume", "records_per_s")
    warm = _get(r, "naive_peer", "warm", "records_per_s")
    cold = _get(r, "naive_peer", "cold", "records_per_s")
    return [
        Headline("Ingest throughput", "worker, every layer written, vs raw confluent-kafka "
                 "consume (the limit)", _fmt(every, "rec/s"), _fmt(raw, "rec/s"),
                 _ratio(every, raw)),
        Headline("", "bronze.transactions (every record as received) vs naive PySpark "
                 "Kafka→Delta, warm run", _fmt(bronze, "rec/s"), _fmt(warm, "rec/s"),
                 _ratio(bronze, warm)),
        Headline("", "silver.transactions + quarantine (validated, deduplicated; the last "
                 "layer) vs naive PySpark, warm run", _fmt(silver, "rec/s"),
                 _fmt(warm, "rec/s"), _ratio(silver, warm)),
        Headline("", "worker, every layer written, vs naive PySpark, cold first run "
                 "(start-up excluded)", _fmt(every, "rec/s"), _fmt(cold, "rec/s"),
                 _ratio(every, cold)),
    ]


def _freshness(r: dict[str, Any]) -> list[Headline]:
    fresh = r.get("freshness") or {}
    trigger = fresh.get("trigger_seconds")
    rows: list[Headline] = []
    for label, key, old in FRESHNESS:
        figures = fresh.get(key) or (fresh.get(old) if old else None) or {}
        p50, p95 = figures.get("p50"), figures.get("p95")
        rows.append(Headline("" if rows else "Freshness",
                             f"{label}, p50 / p95 (ratio: p50 in trigger intervals)",
                             f"{_fmt(p50, 's')} / {_fmt(p95, 's')}",
                             f"trigger {_fmt(trigger, 's', 1)}", _ratio(p50, trigger)))
    return rows


def headlines(r: dict[str, Any]) -> list[Headline]:
    rows: list[Headline] = [*_ingest(r), *_freshness(r)]
    add = rows.append
    worker_rate = _get(r, "ingest_worker", "records_per_s")

    idle, load = r.get("latency_idle") or {}, _get(r, "isolation", "pings_under_load") or {}
    for q in ("p50", "p99"):
        add(Headline("Command latency" if q == "p50" else "",
                     f"ping → worker.pong {q}, under stream + full_report load vs idle",
                     _fmt(_get(load, "pong_ms", q), "ms", 1),
                     _fmt(_get(idle, "pong_ms", q), "ms", 1),
                     _ratio(_get(load, "pong_ms", q), _get(idle, "pong_ms", q))))

    ta = r.get("turnaround") or {}
    add(Headline("Small-batch turnaround",
                 "revenue_by_category: fresh process per job vs long-lived worker "
                 "(ratio: speed-up)",
                 _fmt(ta.get("worker_median_s"), "s"),
                 _fmt(ta.get("traditional_median_s"), "s"),
                 _ratio(ta.get("traditional_median_s"), ta.get("worker_median_s"))))

    iso_rate = _get(r, "isolation", "ingest", "records_per_s")
    add(Headline("Isolation", "stream rate (every layer) with full_report batches running "
                 "vs solo", _fmt(iso_rate, "rec/s"), _fmt(worker_rate, "rec/s"),
                 _ratio(iso_rate, worker_rate, "{:.0%}")))

    rs = r.get("restart") or {}
    add(Headline("Restart",
                 f"start → ready with {_fmt(rs.get('events'), '', 0)} batches and "
                 f"{_fmt(rs.get('commands'), '', 0)} command answers in the log (goal ≤ 15 s) "
                 "vs empty log",
                 _fmt(rs.get("start_to_ready_s"), "s"), _fmt(rs.get("cold_start_to_ready_s"), "s"),
                 _ratio(rs.get("start_to_ready_s"), rs.get("cold_start_to_ready_s"))))
    add(Headline("", "registry rebuild in the worker vs pure fold of the same events",
                 _fmt(_get(rs, "worker_rebuild", "seconds"), "s"),
                 _fmt(_get(rs, "fold", "fold_s"), "s", 3),
                 _ratio(_get(rs, "worker_rebuild", "seconds"), _get(rs, "fold", "fold_s"))))

    mem = r.get("memory") or {}
    naive_mem = _get(r, "naive_peer", "peak_rss_mib")
    add(Headline("Memory", "worker peak resident memory (PSS, Python + JVM) vs naive PySpark job's",
                 _fmt(mem.get("peak_rss_mib"), "MiB", 0), _fmt(naive_mem, "MiB", 0),
                 _ratio(mem.get("peak_rss_mib"), naive_mem)))

    sc = r.get("scaling") or {}
    for what in ("ingest", "batch"):
        g = sc.get(what) or {}
        sizes = g.get("sizes") or []
        secs = ", ".join(_fmt(s, "s") for s in g.get("seconds") or [])
        add(Headline("Scaling" if what == "ingest" else "",
                     f"{what} time at N/2N/4N = {'/'.join(f'{s:,}' for s in sizes)} records "
                     "(ratio: time growth per doubling; linear = 2.00x)",
                     secs or "n/a", f"fixed {_fmt(g.get('fixed_s'), 's')}, "
                     f"+{_fmt(g.get('per_100k_records_s'), 's')}/100k",
                     _ratio(g.get("mean_time_ratio_per_doubling"), 1)))
    return rows


def print_table(rows: list[Headline], console: Console) -> None:
    table = Table(title="pipeline benchmarks (ratios are the headline figures)",
                  show_lines=False)
    for name, justify in (("measurement", "left"), ("figure", "left"), ("value", "right"),
                          ("baseline", "right"), ("ratio", "right")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for row in rows:
        table.add_row(row.measurement, row.figure, row.value, row.baseline,
                      f"[bold]{row.ratio}[/]")
    console.print(table)


def _profile(r: dict[str, Any]) -> dict[str, Any]:
    """Step timings of the big single micro-batch ingests, and of the steady stream."""
    runs = [r.get("ingest_worker")]
    runs += (_get(r, "scaling", "ingest", "runs") or [])
    return {
        "backlog": merge([x["steps"] for x in runs if isinstance(x, dict) and x.get("steps")]),
        "steady": _get(r, "freshness", "steps") or {},
    }


def write_reports(results: dict[str, Any], errors: dict[str, str], timings: dict[str, float],
                  config: BenchConfig, machine: dict[str, Any], *, duration_s: float,
                  console: Console, partial: bool = False) -> None:
    """results.json and the table always; docs/benchmarks.md only for a full run."""
    rows = headlines(results)
    payload = {
        "machine": machine,
        "config": config.to_json(),
        "duration_s": round(duration_s, 1),
        "step_seconds": timings,
        "errors": errors,
        "partial_run": partial,
        "headlines": [row.__dict__ for row in rows],
        "profile_micro_batch_steps": _profile(results),
        "results": results,
    }
    RESULTS_PATH.write_bytes(orjson.dumps(payload, option=orjson.OPT_INDENT_2
                                          | orjson.OPT_NON_STR_KEYS, default=str))
    print_table(rows, Console(width=160) if not Console().is_terminal else Console())
    if errors:
        console.print("[red]errors:[/]")
        for name, message in errors.items():
            console.print(f"  {name}: {message}")
    if partial:
        console.print(f"partial run (BENCH_ONLY): {DOC_PATH.name} left as it was")
    else:
        DOC_PATH.write_text(render_markdown(payload, rows), encoding="utf-8")


def rerender() -> None:
    """docs/benchmarks.md again from bench/results.json (after a change to the report's
    text or headlines; the figures are the stored run's)."""
    payload = orjson.loads(RESULTS_PATH.read_bytes())
    rows = headlines(payload["results"])
    payload["headlines"] = [row.__dict__ for row in rows]
    payload["profile_micro_batch_steps"] = _profile(payload["results"])
    DOC_PATH.write_text(render_markdown(payload, rows), encoding="utf-8")


if __name__ == "__main__":
    rerender()
