"""`make demo`: a scripted tour of the worker that ends by itself.

Every step runs the real `pipeline` console script, so what you see is what you would
type. The tour keeps to its own corner: data under `./data/demo` (wiped at the start),
and a fresh local broker on a free port unless PIPELINE_KAFKA_BOOTSTRAP already answers
(then it uses that broker with per-run topic names, so it never disturbs a running
worker). Whatever it started is stopped at the end, also after Ctrl+C.

    python -m producers.demo
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka import KafkaException
from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from contracts.events import Event, EventType
from contracts.kafka_clients import (
    KafkaUnavailable,
    check_reachable,
    end_offsets,
    ensure_topics,
    make_consumer,
    read_events,
)
from contracts.settings import Settings, load_settings
from contracts.tables import (
    BATCHES_DIR,
    BRONZE_TRANSACTIONS,
    GOLD_DASHBOARD,
    QUARANTINE_TRANSACTIONS,
    SILVER_TRANSACTIONS,
)
from devkit.broker import BrokerError

PIPELINE = str(Path(sys.executable).with_name("pipeline"))
DEMO_DIR = Path("data/demo")
SEED_RECORDS = 50_000
SEED_DAYS = 14
GENERATE_RATE = 500
GENERATE_COUNT = 5_000
INVALID_RATE = 0.01  # a few malformed records, to show the quarantine and the DLQ
BATCH_ID = "demo-full-report"

console = Console(highlight=False)


class DemoFailed(RuntimeError):
    """A step did not do what the tour expects; the message says which and where to look."""


class Tour:
    """The steps of the tour, and everything it started (so cleanup knows what to stop)."""

    def __init__(self) -> None:
        self.data_dir = DEMO_DIR.resolve()
        self.started_broker = False
        self.worker: subprocess.Popen[bytes] | None = None
        self.generator: subprocess.Popen[bytes] | None = None
        self.env: dict[str, str] = {}
        self.settings: Settings | None = None
        self.step_no = 0

    # ---- printing ----------------------------------------------------------------------

    def step(self, title: str, why: str) -> None:
        self.step_no += 1
        console.print()
        console.rule(f"[bold cyan]{self.step_no}. {title}", align="left")
        console.print(why, style="dim")

    def run(self, *args: str, capture: bool = False, timeout: float = 600.0,
            check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run `pipeline ARGS` as a user would, showing the command line first."""
        console.print(f"[bold green]$[/] pipeline {' '.join(args)}")
        result = subprocess.run(
            [PIPELINE, *args], env=self.env, text=True, timeout=timeout,
            stdout=subprocess.PIPE if capture else None,
        )
        if check and result.returncode != 0:
            raise DemoFailed(f"`pipeline {' '.join(args)}` exited {result.returncode}")
        return result

    def run_json(self, *args: str, timeout: float = 600.0) -> dict[str, Any]:
        result = self.run(*args, "--json", capture=True, timeout=timeout, check=False)
        lines = result.stdout.strip().splitlines()
        if not lines:
            raise DemoFailed(f"`pipeline {' '.join(args)} --json` printed nothing "
                             f"(exit {result.returncode})")
        out: dict[str, Any] = orjson.loads(lines[-1])
        if result.returncode != 0:
            raise DemoFailed(f"`pipeline {' '.join(args)}` exited {result.returncode}: "
                             f"{out.get('error') or out}")
        return out

    # ---- the tour ------------------------------------------------------------------------

    def main(self) -> None:
        console.print(Panel.fit(
            "[bold]Kafka-controlled batch & streaming worker: a guided tour[/]\n"
            "broker -> worker -> seed history -> stream -> live generator -> batch report "
            "-> results -> shutdown\n"
            "It takes a few minutes on a small machine; Ctrl+C stops it and cleans up.",
            border_style="cyan"))
        self.prepare_broker()
        self.start_worker()
        self.seed()
        self.start_stream()
        self.start_generator()
        record = self.run_batch()
        self.show_results(record)
        self.show_stream()
        self.show_dashboard()
        self.shutdown()

    def prepare_broker(self) -> None:
        from devkit import broker

        self.step("Kafka broker", "The worker, the CLI and the generator talk only through "
                  "Kafka; locally that is a single-node KRaft broker run from Maven jars.")
        # A broker left behind by an interrupted tour goes first, then the tour's old data.
        if broker.stop(self.data_dir):
            console.print("stopped a broker left running by an earlier tour")
        if self.data_dir.exists():
            shutil.rmtree(self.data_dir)
            console.print(f"removed the previous tour's data in {self.data_dir}")
        self.data_dir.mkdir(parents=True)

        configured = load_settings()
        overrides: dict[str, str] = {}
        if _answers(configured):
            # Someone's broker (maybe with a `make run` worker on it): use fresh topic names
            # and a fresh consumer group so the tour's worker and theirs never meet.
            bootstrap = configured.kafka_bootstrap
            run = uuid.uuid4().hex[:6]
            overrides = {
                "PIPELINE_COMMANDS_TOPIC": f"demo-{run}-pipeline-commands",
                "PIPELINE_EVENTS_TOPIC": f"demo-{run}-pipeline-events",
                "PIPELINE_STREAM_TOPIC": f"demo-{run}-transactions-stream",
                "PIPELINE_BATCH_TOPIC": f"demo-{run}-transactions-batch",
                "PIPELINE_DLQ_TOPIC": f"demo-{run}-pipeline-dlq",
                "PIPELINE_CONSUMER_GROUP": f"demo-{run}-worker",
            }
            console.print(f"a broker answers at [bold]{bootstrap}[/] "
                          "(PIPELINE_KAFKA_BOOTSTRAP): using it, with this run's own topics "
                          f"(prefix demo-{run}-)")
        else:
            bootstrap = f"127.0.0.1:{_free_port()}"
            console.print(f"nothing answers at {configured.kafka_bootstrap}: starting a fresh "
                          f"broker at [bold]{bootstrap}[/] (data in {self.data_dir / 'kafka'})")
            console.print(f"[dim]  (what `PIPELINE_KAFKA_BOOTSTRAP={bootstrap} "
                          f"PIPELINE_DATA_DIR={DEMO_DIR} pipeline broker start` does)[/]")
            self.started_broker = True
            with console.status("starting Kafka..."):
                try:
                    broker.start(bootstrap, self.data_dir, timeout=180)
                except broker.BrokerError:
                    # A JVM launched a moment ago can briefly look gone to the pid check;
                    # start() is idempotent: it finds a live broker and waits for it.
                    time.sleep(1)
                    broker.start(bootstrap, self.data_dir, timeout=180)
            console.print("broker is up")

        self.env = {
            **os.environ,
            "PIPELINE_KAFKA_BOOTSTRAP": bootstrap,
            "PIPELINE_DATA_DIR": str(self.data_dir),
            "PIPELINE_WORKER_ID": "demo-worker",
            **overrides,
        }
        self.settings = load_settings(**{
            k.removeprefix("PIPELINE_").lower(): v for k, v in self.env.items()
            if k.startswith("PIPELINE_") and k.removeprefix("PIPELINE_").lower()
            in Settings.model_fields
        })
        s = self.settings
        table = Table.grid(padding=(0, 2))
        for name, value in (("PIPELINE_KAFKA_BOOTSTRAP", s.kafka_bootstrap),
                            ("PIPELINE_DATA_DIR", s.data_dir),
                            ("commands / events", f"{s.commands_topic} / {s.events_topic}"),
                            ("stream / dlq", f"{s.stream_topic} / {s.dlq_topic}")):
            table.add_row(f"[bold]{name}[/]", str(value))
        console.print(table)

    def start_worker(self) -> None:
        assert self.settings is not None
        self.step("Start the worker", "One long-lived Spark driver: it creates missing topics, "
                  "rebuilds its registry from the events topic, starts Spark, then takes "
                  "commands. It runs in the background; its log goes to a file.")
        ensure_topics(self.settings)  # so the events topic exists before we start listening
        since = _event_ends(self.settings)
        log_path = self.data_dir / "worker.log"
        console.print(f"[bold green]$[/] pipeline worker   [dim](log: {log_path})[/]")
        with log_path.open("ab") as log:
            # Own session: Ctrl+C reaches only the tour, which then stops the worker in order.
            self.worker = subprocess.Popen([PIPELINE, "worker"], env=self.env, stdout=log,
                                           stderr=subprocess.STDOUT, start_new_session=True)
        started = time.monotonic()
        with console.status("waiting for worker.started (Spark takes a while to start)..."):
            event = self._wait_event(
                since, lambda e: e.type is EventType.WORKER_STARTED
                and e.worker_id == "demo-worker", timeout=300)
        if event is None:
            raise DemoFailed(f"the worker did not start; see {log_path}:\n{_tail(log_path)}")
        console.print(f"worker.started after {time.monotonic() - started:.0f}s: Spark "
                      f"{event.data.get('spark_version')} on {event.data.get('spark_master')}")
        self.run("ping")

    def seed(self) -> None:
        self.step("Seed history", f"{SEED_RECORDS:,} realistic transactions over the last "
                  f"{SEED_DAYS} days, appended straight to {SILVER_TRANSACTIONS.name} "
                  "(delta-rs, no Spark) with the stream's enrichments, so batches over "
                  "history work at once.")
        self.run("seed", "--records", str(SEED_RECORDS), "--days", str(SEED_DAYS))

    def start_stream(self) -> None:
        self.step("Start the stream", "Every trigger, the worker lands the stream topic's "
                  f"records in {BRONZE_TRANSACTIONS.name} as received and the valid ones, "
                  f"typed and enriched, in {SILVER_TRANSACTIONS.name}, exactly once; invalid "
                  f"records go to {QUARANTINE_TRANSACTIONS.name} and the DLQ topic.")
        self.run("stream", "start", "--from", "earliest")

    def start_generator(self) -> None:
        self.step("Live traffic", f"{GENERATE_COUNT:,} transactions at {GENERATE_RATE}/s "
                  f"({INVALID_RATE:.0%} malformed on purpose), in the background while the "
                  "batch runs: the stream and the batch share Spark through FAIR pools.")
        args = ["generate", "--rate", str(GENERATE_RATE), "--count", str(GENERATE_COUNT),
                "--invalid-rate", str(INVALID_RATE), "--json"]
        log_path = self.data_dir / "generate.log"
        console.print(f"[bold green]$[/] pipeline {' '.join(args)} &   [dim](log: {log_path})[/]")
        with log_path.open("ab") as log:
            self.generator = subprocess.Popen([PIPELINE, *args], env=self.env,
                                              stdout=subprocess.PIPE, stderr=log,
                                              start_new_session=True)

    def run_batch(self) -> dict[str, Any]:
        today = datetime.now(UTC).date()
        first = today - timedelta(days=SEED_DAYS)
        self.step("Batch analysis", "full_report runs all eight analyses over a date range "
                  "of the Delta history, in the batch pool, while the stream keeps going. "
                  "--wait follows its events until it ends.")
        record = self.run_json("batch", "run", "--analysis", "full_report",
                               "--from-date", first.isoformat(), "--to-date", today.isoformat(),
                               "--batch-id", BATCH_ID, "--wait", timeout=3600)
        table = Table("analysis", "rows", "Delta version", "path", title=(
            f"batch {record['batch_id']} {record['status']} in "
            f"{record.get('duration_seconds') or 0:.0f}s: {record.get('row_count') or 0:,} "
            "input rows"))
        for name, pointer in (record.get("aggregated") or {}).items():
            table.add_row(name, f"{pointer.get('row_count') or 0:,}", str(pointer["version"]),
                          _short_path(pointer["path"], self.data_dir))
        console.print(table)
        return record

    def show_results(self, record: dict[str, Any]) -> None:
        self.step("Results", "Results are ordinary Delta tables; the CLI reads them with "
                  "delta-rs (no JVM). So can Spark, DuckDB and pandas.")
        self.run("batch", "results", record["batch_id"], "--analysis", "revenue_by_category")

    def show_stream(self) -> None:
        assert self.generator is not None
        self.step("Stream progress", "Each micro-batch publishes stream.progress; the CLI "
                  "folds the events topic to show the latest one.")
        with console.status("waiting for the generator to finish..."):
            out, _ = self.generator.communicate(timeout=600)
        lines = out.decode().strip().splitlines()
        produced = orjson.loads(lines[-1]) if lines else {}
        total = int(produced.get("valid", 0)) + int(produced.get("invalid", 0))
        console.print(f"generator produced {produced.get('valid')} valid + "
                      f"{produced.get('invalid')} malformed records to {produced.get('topic')}")
        deadline = time.monotonic() + 300
        seen = 0
        with console.status("waiting for the stream to catch up...") as status:
            while time.monotonic() < deadline:
                state = self.run_json_quiet("stream", "status")
                progress = state.get("last_progress") or {}
                seen = int(progress.get("total_rows_written", 0)) + \
                    int(progress.get("total_rows_quarantined", 0))
                status.update(f"waiting for the stream to catch up: {seen:,}/{total:,} rows")
                if seen >= total:
                    break
                time.sleep(2)
        if seen < total:
            console.print(f"[yellow]the stream has taken {seen:,} of {total:,} rows so far[/]")
        self.run("stream", "status")

    def show_dashboard(self) -> None:
        from deltalake import DeltaTable

        self.step("Read Delta without Spark", "Every table of the medallion by logical "
                  "name, from the Delta logs; then the real-time dashboard "
                  f"({GOLD_DASHBOARD.name}) and the quarantine "
                  f"({QUARANTINE_TRANSACTIONS.name}), read with delta-rs.")
        self.run("tables")
        delta_root = self.data_dir / "delta"
        dashboard = DeltaTable(str(GOLD_DASHBOARD.path(delta_root))).to_pandas()
        latest = dashboard.sort_values(["window_start", "window_revenue"],
                                       ascending=[False, False]).head(5)
        table = Table("window_start", "category", "txn_count", "window_revenue",
                      "fraud_alerts", title="latest 5-minute windows")
        for row in latest.itertuples():
            table.add_row(str(row.window_start), row.category, str(row.txn_count),
                          f"{row.window_revenue:,.2f}", str(row.fraud_alerts))
        console.print(table)
        quarantine = QUARANTINE_TRANSACTIONS.path(delta_root)
        if quarantine.exists():
            rows = DeltaTable(str(quarantine)).to_pandas(columns=["reason", "partition",
                                                                  "offset"])
            table = Table("reason", "partition", "offset",
                          title=f"quarantine: {len(rows)} record(s), first 5")
            for row in rows.head(5).itertuples():
                table.add_row(row.reason, str(row.partition), str(row.offset))
            console.print(table)

    def shutdown(self) -> None:
        self.step("Shut down", "A shutdown command stops the stream at a micro-batch "
                  "boundary, drains batches and publishes worker.stopped.")
        self.run("stop", "--wait")
        assert self.worker is not None
        self.worker.wait(120)
        console.print(f"worker exited with code {self.worker.returncode}")

    # ---- helpers ---------------------------------------------------------------------------

    def run_json_quiet(self, *args: str) -> dict[str, Any]:
        result = subprocess.run([PIPELINE, *args, "--json"], env=self.env, text=True,
                                capture_output=True, timeout=120)
        lines = result.stdout.strip().splitlines()
        return orjson.loads(lines[-1]) if lines else {}

    def _wait_event(self, since: dict[int, int], predicate: Any,
                    timeout: float) -> Event | None:
        assert self.settings is not None and self.worker is not None
        deadline = time.monotonic() + timeout
        worker = self.worker
        for event in read_events(
            self.settings, follow=True, start_offsets=since,
            should_stop=lambda: time.monotonic() > deadline or worker.poll() is not None,
        ):
            if predicate(event):
                return event
        return None

    # ---- cleanup ---------------------------------------------------------------------------

    def cleanup(self) -> None:
        """Stop what the tour started: generator, worker (gracefully, then hard), broker."""
        if self.generator is not None and self.generator.poll() is None:
            _terminate(self.generator, "generator", grace=10)
        if self.worker is not None and self.worker.poll() is None:
            console.print("stopping the worker (SIGTERM: graceful; Ctrl+C again to kill it)")
            _terminate(self.worker, "worker", grace=120)
        if self.started_broker:
            from devkit import broker

            if broker.stop(self.data_dir):
                console.print("stopped the tour's broker (what `pipeline broker stop` does)")


def _terminate(proc: subprocess.Popen[bytes], name: str, grace: float) -> None:
    """SIGTERM, wait `grace` seconds, then SIGKILL its whole session (the Spark JVM too)."""
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(grace)
        return
    except (subprocess.TimeoutExpired, KeyboardInterrupt):
        console.print(f"[yellow]killing the {name}[/]")
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # its own session, started by the tour
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(30)


def _answers(settings: Settings) -> bool:
    """True if a Kafka broker answers at the configured bootstrap.

    A plain TCP connect first: when nothing listens, this stays quick and quiet instead of
    letting librdkafka log refused connections.
    """
    first = settings.kafka_bootstrap.split(",")[0].strip()
    host, _, port = first.rpartition(":")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=1.0).close()
    except OSError:
        return False
    try:
        check_reachable(settings, timeout=5.0)
    except KafkaUnavailable:
        return False
    return True


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _event_ends(settings: Settings, timeout: float = 60.0) -> dict[int, int]:
    """End offsets of the events topic; retried, as a topic created a moment ago may not
    have a partition leader yet."""
    deadline = time.monotonic() + timeout
    consumer = make_consumer(settings)
    try:
        while True:
            try:
                ends = end_offsets(consumer, settings.events_topic)
                if ends:
                    return ends
            except KafkaException:
                if time.monotonic() > deadline:
                    raise
            if time.monotonic() > deadline:
                raise DemoFailed(f"topic {settings.events_topic} has no partitions")
            time.sleep(0.5)
    finally:
        consumer.close()


def _tail(path: Path, lines: int = 30) -> str:
    text = path.read_text(errors="replace") if path.exists() else ""
    return "\n".join(text.splitlines()[-lines:])


def _short_path(path: str, root: Path) -> str:
    with contextlib.suppress(ValueError):
        return str(Path(path).relative_to(root))
    return path


def _interrupt(_signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    del argv
    # The worker and the generator run in their own sessions, so a signal to the tour does
    # not reach them: Ctrl+C and SIGTERM both end up in the cleanup that stops them in
    # order. (Set explicitly: a shell may have started the tour with SIGINT ignored.)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)
    tour = Tour()
    started = time.monotonic()
    code = 0
    try:
        tour.main()
    except KeyboardInterrupt:
        console.print("\n[yellow]interrupted: cleaning up[/]")
        code = 130
    except (DemoFailed, KafkaUnavailable, BrokerError, subprocess.TimeoutExpired) as exc:
        console.print(f"\n[red]the tour stopped:[/] {exc}")
        code = 1
    finally:
        try:
            tour.cleanup()
        except KeyboardInterrupt:
            code = 130
    if code == 0:
        table = DEMO_DIR / "delta" / BATCHES_DIR / BATCH_ID / "aggregated" / "revenue_by_category"
        console.print()
        console.print(Panel.fit(f"Tour finished in {time.monotonic() - started:.0f}s.",
                                border_style="green"))
        console.print(f"The Delta tables stay in {DEMO_DIR / 'delta'}; read one with pandas "
                      "(no JVM):")
        console.print(f"  .venv/bin/python -c \"from deltalake import DeltaTable; "
                      f"print(DeltaTable('{table}').to_pandas())\"", soft_wrap=True)
        console.print("Next: `make run` for a worker of your own; README.md has every command.")
    return code


if __name__ == "__main__":
    sys.exit(main())
