"""`python -m bench.run` (`make bench`): every measurement in one run, then the report.

Order matters and is written down here: baselines that need the machine to themselves
(raw consume, the naive peer) run before the worker starts; every ingest of a pre-filled
topic runs before the freshness run, so no pre-filled record is older than the
dashboard's 10-minute watermark when it is ingested; the restart comes last because it
stops the worker. A failing measurement is recorded and the run carries on.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from rich.console import Console

from bench import freshness, isolation, restart, scaling, spark_events, turnaround
from bench.cluster import Isolated, local_broker
from bench.config import BenchConfig
from bench.data import History, Topic, prefill, seed
from bench.events import Commander, EventWatcher
from bench.harness import Harness
from bench.ingest import naive_peer, raw_consume, stream_ingest
from bench.latency import ping_series
from bench.machine import describe
from bench.memory import RssSampler
from bench.report import RESULTS_PATH, write_reports
from bench.worker_proc import WorkerProcess
from contracts.kafka_clients import ensure_topics

console = Console(stderr=True)
T = TypeVar("T")


STEPS = ("consume", "naive", "latency", "ingest", "scaling", "turnaround", "isolation",
         "freshness", "restart")


class Run:
    def __init__(self, config: BenchConfig) -> None:
        self.config = config
        self.started = time.monotonic()
        self.results: dict[str, Any] = {}
        self.errors: dict[str, str] = {}
        self.timings: dict[str, float] = {}
        self.windows: dict[str, tuple[float, float]] = {}  # wall-clock span of each step
        only = os.environ.get("BENCH_ONLY", "").strip()
        self.only = {x.strip() for x in only.split(",") if x.strip()} if only else None
        unknown = (self.only or set()) - set(STEPS)
        if unknown:
            raise SystemExit(f"BENCH_ONLY: unknown step(s) {sorted(unknown)}; "
                             f"choose from {', '.join(STEPS)}")

    def wants(self, key: str) -> bool:
        return self.only is None or key in self.only

    def step(self, key: str, title: str, fn: Callable[[], T]) -> T | None:
        if key not in ("setup", "worker") and not self.wants(key):
            return None
        console.print(f"[bold cyan]▶ {title}[/] [dim](t+{self.elapsed():.0f}s)[/]")
        t0, w0 = time.monotonic(), time.time()
        try:
            return fn()
        except Exception as exc:
            self.errors[title] = f"{type(exc).__name__}: {exc}"
            console.print(f"[red]✗ {title} failed:[/] {exc}")
            traceback.print_exc(file=sys.stderr)
            return None
        finally:
            self.timings[title] = round(time.monotonic() - t0, 1)
            self.windows[title] = (w0, time.time())

    def elapsed(self) -> float:
        return time.monotonic() - self.started


def _setup_data(run: Run, iso: Isolated) -> tuple[dict[str, Topic], dict[str, History]]:
    cfg = run.config
    settings = iso.settings()
    env = iso.process_env()
    hist, n_hist = cfg.history_records, cfg.history_records // 4
    histories = {
        "turnaround": seed(settings, "turnaround", hist, days=28, ends_days_ago=1,
                           seed_value=101),
        "N": seed(settings, "N", n_hist, days=7, ends_days_ago=40, seed_value=102),
        "2N": seed(settings, "2N", 2 * n_hist, days=7, ends_days_ago=50, seed_value=103),
    }
    n = cfg.ingest_records // 4
    sizes = {"warmup": cfg.warmup_records, "ingest": cfg.ingest_records,
             "isolation": cfg.ingest_records, "N": n, "2N": 2 * n}
    topics = {name: prefill(env, iso.topic(name), count, cfg.invalid_rate, seed=200 + i)
              for i, (name, count) in enumerate(sizes.items())}
    run.results["data"] = {
        "histories": {k: {"records": h.records, "from": h.start_date.isoformat(),
                          "to": h.end_date.isoformat(), "seed_s": round(h.seconds, 2)}
                      for k, h in histories.items()},
        "topics": {k: {"records": t.records, "invalid": t.invalid,
                       "generate_s": round(t.seconds, 2),
                       "generate_records_per_s": round(t.records / t.seconds)
                       if t.seconds else None}
                   for k, t in topics.items()},
    }
    return topics, histories


def _measure_with_worker(run: Run, h: Harness, topics: dict[str, Topic],
                         histories: dict[str, History]) -> None:
    cfg = run.config
    res = run.results

    h.phase("idle")
    res["latency_idle"] = run.step("latency", "command latency, idle",
                                   lambda: ping_series(h, cfg.pings))

    h.phase("warm-up")
    if any(run.wants(k) for k in ("ingest", "scaling", "turnaround", "isolation", "freshness")):
        run.step("worker", "warm-up (small ingest + batch)", lambda: (
            stream_ingest(h, topics["warmup"].name, topics["warmup"].records,
                          label="warm-up"),
            turnaround.worker_batch(h, histories["N"])))

    h.phase("ingest")
    res["ingest_worker"] = run.step("ingest", "ingest throughput, worker", lambda: stream_ingest(
        h, topics["ingest"].name, topics["ingest"].records, label="solo"))

    h.phase("scaling")
    scaled: dict[str, Any] = {}
    scaled["ingest"] = run.step("scaling", "scaling: ingest N, 2N (4N = solo ingest)",
                                lambda: scaling.measure_ingest(
                                    h, [topics["N"], topics["2N"]], res.get("ingest_worker")))

    h.phase("turnaround")
    res["turnaround"] = run.step("turnaround", "small-batch turnaround",
                                 lambda: turnaround.measure(h, histories["turnaround"]))

    h.phase("scaling")
    scaled["batch"] = run.step("scaling", "scaling: batch N, 2N (4N = turnaround)",
                               lambda: scaling.measure_batch(
                                   h, [histories["N"], histories["2N"]], res.get("turnaround")))
    if any(scaled.values()):
        res["scaling"] = scaled

    h.phase("isolation")
    res["isolation"] = run.step("isolation", "isolation under full_report load",
                                lambda: isolation.measure(h, topics["isolation"],
                                                          histories["turnaround"]))

    h.phase("freshness")
    res["freshness"] = run.step("freshness", "freshness", lambda: freshness.measure(
        h, h.iso.topic("fresh")))


def _run_all(run: Run, root: Path) -> None:
    cfg = run.config
    with local_broker(root / "broker") as bootstrap:
        iso = Isolated(bootstrap, root / "data", cfg.spark_master, cfg.driver_memory)
        settings = iso.settings()
        ensure_topics(settings)
        data = run.step("setup", "test data (seed history, pre-fill topics)",
                        lambda: _setup_data(run, iso))
        if data is None:
            return
        topics, histories = data
        main_topic = topics["ingest"]
        run.results["raw_consume"] = run.step("consume", "raw consume (limit)", lambda: (
            raw_consume(settings, main_topic.name, main_topic.records, parse=False)))
        run.results["raw_consume_parse"] = run.step(
            "consume", "raw consume + orjson", lambda: raw_consume(
                settings, main_topic.name, main_topic.records, parse=True))
        run.results["naive_peer"] = run.step("naive", "naive PySpark peer", lambda: naive_peer(
            iso.process_env(), bootstrap, main_topic.name, root / "naive",
            main_topic.records))
        if run.only is not None and run.only <= {"consume", "naive"}:
            return

        worker_env = iso.process_env()
        events_dir = root / "spark-events"
        if spark_events.enabled():
            worker_env["PYSPARK_SUBMIT_ARGS"] = spark_events.submit_args(events_dir)
        rss = RssSampler()
        worker = WorkerProcess(worker_env, root / "worker.log")
        try:
            with EventWatcher(settings) as watcher:
                h = Harness(cfg, iso, root, watcher, Commander(settings, watcher), worker, rss)
                h.phase("start-up")
                cold = run.step("worker", "worker start (empty log)",
                                lambda: worker.start(watcher, on_spawn=rss.watch))
                run.results["worker_start_s"] = round(cold, 3) if cold is not None else None
                if cold is not None:
                    _measure_with_worker(run, h, topics, histories)
                    h.phase("restart")
                    run.results["restart"] = run.step(
                        "restart", "restart with a long event log",
                        lambda: restart.measure(h, cold))
        finally:
            worker.stop()
            rss.close()
            run.results["memory"] = rss.report()
            if worker.log_path.exists():
                shutil.copyfile(worker.log_path, Path(__file__).with_name("last-worker.log"))
            if spark_events.enabled():
                run.results["spark_jobs"] = {
                    title: spark_events.job_profile(events_dir, w0 * 1000, w1 * 1000)
                    for title, (w0, w1) in run.windows.items()}


def main() -> int:
    config = BenchConfig.from_env()
    run = Run(config)
    machine = describe()
    root = Path(tempfile.mkdtemp(prefix="pipeline-bench-"))
    console.print(f"[bold]pipeline benchmarks[/] scale={config.scale} "
                  f"({machine['cores']} cores, {machine['cpu_model']}); work dir {root}")
    try:
        _run_all(run, root)
    except Exception as exc:  # the broker or the set-up failed: still report what we have
        run.errors["run"] = f"{type(exc).__name__}: {exc}"
        traceback.print_exc(file=sys.stderr)
    finally:
        machine["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
        if os.environ.get("BENCH_KEEP"):
            console.print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    write_reports(run.results, run.errors, run.timings, config, machine,
                  duration_s=run.elapsed(), console=console, partial=run.only is not None)
    console.print(f"results: {RESULTS_PATH}  ({run.elapsed() / 60:.1f} min)")
    return 1 if "run" in run.errors else 0


if __name__ == "__main__":
    sys.exit(main())
