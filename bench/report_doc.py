"""The text of docs/benchmarks.md: the headline table, details per measurement, the
micro-batch step profile, the machine, and how it was all measured."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bench.report_fmt import Headline
from bench.report_fmt import fmt as _fmt
from bench.report_fmt import get as _get

# The steps the worker times in each micro-batch (worker/medallion.py StepTimer).
STEP_MEANING = {
    "parse+count": "parse the Kafka values against the contract and answer every question "
                   "the write needs in one counting job (the rows stay cached)",
    "bronze": "append every record as received to bronze.transactions",
    "silver": "dedupe on transaction_id against silver, enrich and append the valid rows "
              "to silver.transactions",
    "quarantine+dlq": "append invalid and dropped rows to quarantine.transactions and "
                      "forward them to the DLQ topic",
    "quality": "append one row per expectation to quality.metrics",
    "dashboard (own thread)": "recompute the gold.dashboard windows the micro-batches "
                              "touched (the refresher's first step)",
    "fraud scores (own thread)": "rescore the spans the micro-batches touched, widened by "
                                 "the velocity window, send their alerts and replace them "
                                 "in gold.fraud_scores",
    "gold tables (own thread)": "recompute and replace the windows of the four gold "
                                "business tables that overlap those spans",
}


def _md_table(header: list[str], body: list[list[str]]) -> str:
    def esc(cell: str) -> str:
        return cell.replace("|", "\\|")

    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(esc(c) for c in row) + " |" for row in body]
    return "\n".join(lines)


def _detail_lines(r: dict[str, Any]) -> list[str]:
    out: list[str] = []
    w: Callable[[str], None] = out.append
    ing = r.get("ingest_worker") or {}
    naive = r.get("naive_peer") or {}
    raw, rawp = r.get("raw_consume") or {}, r.get("raw_consume_parse") or {}
    bronze, silver = _get(ing, "layers", "bronze") or {}, _get(ing, "layers", "silver") or {}
    w(f"- **Ingest** ({_fmt(ing.get('records'), '', 0)} records, 1% malformed; medallion "
      f"and default expectations on): bronze.transactions complete after "
      f"{_fmt(bronze.get('seconds'), 's')} ({_fmt(ing.get('rows_bronze'), '', 0)} rows), "
      f"silver.transactions + quarantine after {_fmt(silver.get('seconds'), 's')}; every "
      f"layer {_fmt(ing.get('seconds'), 's')} end to end (start_stream → last Delta commit), "
      f"of which {_fmt(ing.get('query_start_s'), 's')} to start the query and "
      f"{_fmt(ing.get('processing_s'), 's')} inside {ing.get('micro_batches', 'n/a')} "
      f"micro-batch(es) ({_fmt(ing.get('processing_records_per_s'), 'rec/s')} while "
      f"processing); {_fmt(ing.get('rows_valid'), '', 0)} rows to silver.transactions, "
      f"{_fmt(ing.get('rows_quarantined'), '', 0)} to quarantine.transactions, "
      f"{_fmt(ing.get('duplicates'), '', 0)} duplicates skipped.")
    w(f"- **Raw consume**: {_fmt(raw.get('records_per_s'), 'rec/s')} "
      f"({_fmt(raw.get('mib_per_s'), 'MiB/s', 1)}, {raw.get('avg_record_bytes', 'n/a')} "
      f"bytes/record); with orjson parsing {_fmt(rawp.get('records_per_s'), 'rec/s')}.")
    w(f"- **Naive PySpark peer**: Spark start-up {_fmt(naive.get('spark_start_s'), 's')}, "
      f"cold run {_fmt(_get(naive, 'cold', 'seconds'), 's')}, warm run "
      f"{_fmt(_get(naive, 'warm', 'seconds'), 's')}, process wall "
      f"{_fmt(naive.get('process_wall_s'), 's')}. It only parses and appends one table: no raw "
      "bronze copy, validation, dedupe, quarantine, DLQ, quality metrics, dashboard or "
      "exactly-once bookkeeping.")
    fr = r.get("freshness") or {}
    if fr:
        w(f"- **Freshness** ({_fmt(fr.get('rate_per_s'), '/s', 0)} for "
          f"{_fmt(fr.get('seconds'), 's', 0)}, trigger {_fmt(fr.get('trigger_seconds'), 's', 1)}"
          f"): produce → write start p50 "
          f"{_fmt(_get(fr, 'produce_to_processing_start_s', 'p50'), 's')}, write start → "
          f"readable in silver p50 "
          f"{_fmt(_get(fr, 'processing_start_to_readable_s', 'p50'), 's')}; "
          f"{fr.get('bronze_commits', 'n/a')} bronze commits for "
          f"{fr.get('rows_bronze', 'n/a')} rows, {fr.get('commits', 'n/a')} silver commits "
          f"for {fr.get('rows_readable', 'n/a')} rows; Kafka CreateTime - event_timestamp "
          f"p50 {_fmt(_get(fr, 'kafka_timestamp_minus_event_timestamp_s', 'p50'), 's', 3)} "
          "(the two produce stamps the layers are timed from).")
    idle = r.get("latency_idle") or {}
    load = _get(r, "isolation", "pings_under_load") or {}
    if idle:
        def p50(data: dict[str, Any], key: str) -> str:
            return _fmt(_get(data, key, "p50"), "ms", 1)

        w(f"- **Command latency**: idle p50 {p50(idle, 'pong_ms')} = command → pong produced "
          f"{p50(idle, 'command_to_pong_produced_ms')} + pong → client "
          f"{p50(idle, 'pong_produced_to_client_ms')}; under load p50 {p50(load, 'pong_ms')} = "
          f"{p50(load, 'command_to_pong_produced_ms')} + "
          f"{p50(load, 'pong_produced_to_client_ms')} "
          f"({idle.get('pings')} idle, {load.get('pings')} loaded pings).")
    ta = r.get("turnaround") or {}
    if ta:
        jobs = ta.get("traditional_runs") or []
        inner = ", ".join(f"start {j.get('spark_start_s')} s + job {j.get('job_s')} s + "
                          f"stop {j.get('spark_stop_s')} s" for j in jobs)
        runs = ", ".join(f"{x.get('seconds')} s" for x in ta.get("worker_runs") or [])
        w(f"- **Turnaround** over {_fmt(ta.get('history_rows'), '', 0)} history rows: worker "
          f"runs {runs} (submit → batch.completed; the worker also writes the batch's raw "
          f"copy); fresh processes {inner}.")
    iso = r.get("isolation") or {}
    if iso:
        w(f"- **Isolation**: {iso.get('full_reports')} full_report batches over "
          f"{_fmt(iso.get('history_rows'), '', 0)} rows took "
          f"{', '.join(f'{v} s' for v in (iso.get('batches_s') or {}).values())}; they covered "
          f"{_fmt(iso.get('load_coverage'), '', 2)} of the ingest window (1.00 = all of it).")
    rs = r.get("restart") or {}
    if rs:
        w(f"- **Restart**: {_fmt(rs.get('events'), '', 0)} synthetic batch.completed events "
          f"and {_fmt(rs.get('commands'), '', 0)} command answers; "
          "client-side "
          f"read+decode {_fmt(_get(rs, 'fold', 'read_decode_s'), 's')}, fold "
          f"{_fmt(_get(rs, 'fold', 'fold_s'), 's', 3)}; worker log: "
          f"{_get(rs, 'worker_rebuild', 'events')} events rebuilt in "
          f"{_fmt(_get(rs, 'worker_rebuild', 'seconds'), 's')}.")
    mem = r.get("memory") or {}
    if mem:
        phases = ", ".join(f"{k} {v:.0f}" for k, v in (mem.get("peak_by_phase_mib") or {}).items())
        w(f"- **Memory** (MiB, sampled every {mem.get('interval_s')} s): peak "
          f"{_fmt(mem.get('peak_rss_mib'), '', 0)} "
          f"(Python {_fmt(mem.get('peak_python_mib'), '', 0)}, "
          f"JVM {_fmt(mem.get('peak_jvm_mib'), '', 0)}); per phase: {phases}.")
    return out


def _profile_table(backlog: dict[str, Any], steady: dict[str, Any]) -> str:
    if not backlog.get("seconds") and not steady.get("seconds"):
        return "No micro-batch step timings were captured."
    names = list(dict.fromkeys([*backlog.get("seconds", {}), *steady.get("seconds", {})]))

    def cells(p: dict[str, Any], name: str) -> list[str]:
        n = max(int(p.get("micro_batches") or 0), 1)
        if name not in p.get("seconds", {}):
            return ["-", "-"]
        return [f"{p['seconds'][name] / n:.2f}", f"{p['share'].get(name, 0):.0%}"]

    table = _md_table(
        ["step", "backlog: s per micro-batch", "share", "steady 200/s: s per micro-batch",
         "share"],
        [[name, *cells(backlog, name), *cells(steady, name)] for name in names])
    return (table + f"\n\nBacklog: the {backlog.get('micro_batches', 0)} micro-batches of the "
            f"solo and scaling ingests (50k-200k records each); steady: the "
            f"{steady.get('micro_batches', 0)} micro-batches of the freshness run. "
            f"The downstream refresher (dashboard, fraud scores, gold tables) runs in its own "
            f"thread beside the micro-batches (one recompute covers every micro-batch that "
            f"finished while the previous one ran: "
            f"{backlog.get('downstream_recomputes', 0)} and "
            f"{steady.get('downstream_recomputes', 0)} recomputes here); its rows are its "
            f"total time spread over the micro-batches. A step "
            f"a micro-batch had nothing for is not logged (no invalid rows: no "
            f"quarantine+dlq).\n\n" + _step_legend(names))


def _step_legend(names: list[str]) -> str:
    return "\n".join(f"- `{name}`: {STEP_MEANING[name]}." for name in names
                     if name in STEP_MEANING)


def render_markdown(payload: dict[str, Any], rows: list[Headline]) -> str:
    m = payload["machine"]
    cfg = payload["config"]
    prof = payload["profile_micro_batch_steps"]
    head = _md_table(["measurement", "figure", "value", "baseline (same run)", "ratio"],
                     [[x.measurement, x.figure, x.value, x.baseline, f"**{x.ratio}**"]
                      for x in rows])
    machine = _md_table(["", ""], [
        ["date (UTC)", str(m.get("date_utc"))],
        ["CPU", f"{m.get('cpu_model')}, {m.get('cores')} cores"],
        ["memory", f"{m.get('memory_gib')} GiB"],
        ["load average start → end", f"{m.get('load_average_at_start')} → "
                                     f"{m.get('load_average_at_end')}"],
        ["OS", str(m.get("os"))],
        ["Java", str(m.get("java"))],
        ["Python", str(m.get("python"))],
        ["PySpark / delta-spark (wheel)", f"{m.get('pyspark')} / {m.get('delta_spark')}"],
        ["JVM jars", ", ".join(str(m[k]) for k in ("delta_spark_jar", "spark_kafka_jar",
                                                    "kafka_broker_jar") if m.get(k))],
        ["confluent-kafka / deltalake", f"{m.get('confluent_kafka')} / {m.get('deltalake')}"],
        ["worker settings", f"PIPELINE_SPARK_MASTER={cfg['spark_master']}, "
                            f"PIPELINE_SPARK_DRIVER_MEMORY={cfg['driver_memory']}, "
                            "other settings at their defaults"],
        ["BENCH_SCALE", f"{cfg['scale']} (run took {payload['duration_s'] / 60:.1f} min)"],
    ])
    profile = _profile_table(prof.get("backlog") or {}, prof.get("steady") or {})
    errors = payload.get("errors") or {}
    error_text = "\n".join(f"- {k}: {v}" for k, v in errors.items()) or "None."
    return f"""# Benchmarks

`make bench` measures the worker on one machine, every figure against a baseline measured in
the same run; the ratios are the headline figures because absolute times on a shared 2-core
machine drift from run to run. Benchmarks report; they assert nothing, and `make test` does
not run them.

This file is rewritten by every `make bench` run (machine-readable results:
`bench/results.json`, git-ignored).

## Latest results

{head}

Details:

{chr(10).join(_detail_lines(payload["results"]))}

### Where the stream's time goes

The worker logs each micro-batch's steps at DEBUG level (`pipeline worker --log-level DEBUG`);
the bench runs it that way; average seconds per micro-batch:

{profile}

### Machine

{machine}

**Noise.** The machine is shared with other running tests and jobs; compare the load
averages above with the core count. Ratios of figures from the same run are robust to that;
absolute figures are not.

Errors in this run: {error_text}

What profiling changed, and what each change bought, is kept in
[performance-log.md](performance-log.md).

## How to reproduce

```
make bench                  # default scale, < 15 minutes on 2 cores
BENCH_SCALE=2 make bench    # twice the records / durations (0.01 .. 100)
BENCH_KEEP=1 make bench     # keep the temporary work dir (broker, Delta, worker log)
```

`make bench` installs the venv and the JVM jars if needed (`make jars`), starts its own
KRaft broker on a free port with a temporary data dir (`devkit.broker`), runs a real
`pipeline worker` process on isolated topics, consumer group and `PIPELINE_DATA_DIR`
(`PIPELINE_SPARK_MASTER=local[2]`, `PIPELINE_SPARK_DRIVER_MEMORY=2g`), stops everything and
writes `bench/results.json`, this file and a table on the terminal. The last worker log is
kept in `bench/last-worker.log`.

Sizes at `BENCH_SCALE=1` (each scales linearly): 200k records for ingest and isolation,
200 records/s for 60 s for freshness, 100 idle pings, 100k history rows for the
turnaround and as `full_report` input, scaling at 50k/100k/200k records (ingest) and
25k/50k/100k rows (batch), 10,000 batches and 1,000,000 command answers for the restart.

For profiling:

```
BENCH_ONLY=ingest,freshness make bench        # a subset: consume, naive, latency, ingest,
                                              # scaling, turnaround, isolation, freshness, restart
BENCH_SPARK_EVENTLOG=1 make bench             # + Spark job times by call site per step
.venv/bin/python -m bench.parse_profile       # the parse step's parts, without Kafka
```

## What is measured

1. **Ingest throughput, per layer.** A topic pre-filled with `pipeline generate --rate 0`
   (1% malformed records) is ingested by `start_stream` from `earliest`, with the medallion
   and the default expectations on (`worker/quality/expectations.yaml`): each micro-batch
   appends every record to bronze.transactions, dedupes the valid ones on `transaction_id`
   into silver.transactions, sends malformed and dropped rows to quarantine.transactions and
   the DLQ topic, appends its expectation results to quality.metrics, and gold.dashboard,
   gold.fraud_scores (with its alerts and the served model) and the four gold business
   tables are recomputed behind it. The history seeded for the batch runs is scored and
   aggregated once, when the stream first starts (during the warm-up). The time runs from
   the command to the Delta commit that brings bronze.transactions to the produced count
   (bronze), and to the one that brings silver.transactions + quarantine.transactions there
   (silver; duplicates the worker reports skipping count as there); "every layer written",
   the later of the two, is the figure the isolation and scaling runs use (commit times are
   the `_delta_log` files' modification times). Baselines: (a) a plain confluent-kafka loop
   consuming the same topic (the practical limit of this machine), and (b) a naive PySpark
   script in its own process (`bench/naive_spark.py`: Kafka → `from_json` → one Delta
   append, same jars, master and driver memory), timed without its Spark start-up; its first
   run is cold, its second warm. The worker is warmed up by a small ingest and a batch
   first, as a long-lived driver is.
2. **Freshness, per layer.** The stream runs from `latest` while the generator produces at
   a steady rate. For every record, the bronze.transactions commit that made it readable,
   timed from its Kafka CreateTime (`kafka_timestamp`, stamped in the producer's produce
   call); the silver.transactions commit that made it readable, timed from its
   `event_timestamp` (stamped by the generator just before that call; the run reports the
   difference of the two stamps); and, for each table recomputed behind the stream
   (gold.dashboard, gold.fraud_scores, gold.store_activity, gold.customer_activity,
   gold.region_activity, gold.hourly_summary), the first commit of that table after the
   silver one (the downstream refresher recomputes what a micro-batch touched once the
   micro-batch has appended). Baseline: the trigger interval.
3. **Command latency.** Sequential pings with `contracts.kafka_clients`, from produce to the
   `worker.pong` reaching a client: idle, and while the stream ingests and three
   `full_report` batches run.
4. **Small-batch turnaround.** `revenue_by_category` over the seeded history: submit →
   `batch.completed` on the running worker (median of 3) against a fresh Python process
   (`bench/traditional_job.py`) that starts Spark with the worker's session settings, reads
   the rows, runs `worker.analytics.revenue_by_category`, writes the Delta result and exits
   (wall time, start-up included).
5. **Isolation.** The ingest of (1) repeated on an equal topic while three `full_report`
   batches run in `batch-pool`, as a fraction of the solo rate.
6. **Restart.** The worker is stopped, 10,000 synthetic `batch.completed` events with full
   batch records are produced to the event topic, and a new worker is started: spawn →
   `worker.started`, against the first start on an empty log; the pure fold time of the same
   events (`contracts.registry.fold_events`) is reported next to it.
7. **Memory.** Peak resident memory (PSS, so pages a forked helper shares with the JVM
   count once) of the worker's process tree (Python driver + JVM), sampled with
   psutil every 0.5 s over the whole run, against the naive peer's process tree.
8. **Scaling.** Ingest and `revenue_by_category` batch time at N, 2N and 4N records (4N is
   the solo ingest of (1) and the turnaround batch of (4)): the growth per doubling (2.00x
   is linear; less means fixed costs dominate) and a fixed + per-record fit.
"""
