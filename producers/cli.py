"""`pipeline`: the command-line client of the worker (README.md#the-pipeline-cli).

Exit codes: 0 ok, 1 rejected/failed, 2 usage, 3 timed out. `--json` prints one JSON object
on stdout and nothing else; progress goes to stderr. Only `pipeline worker` loads Spark.

Commands are sent at least once and executed at most once: the CLI picks the command_id
(and a batch id) before sending, and re-sends the same command when no answer comes.
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import typer
from confluent_kafka import KafkaException

from contracts.commands import AnalysisType
from contracts.errors import ContractError
from contracts.events import (
    BatchStatus,
    Event,
    EventType,
    stream_progress_subject,
    stream_subject,
)
from contracts.kafka_clients import KafkaUnavailable
from contracts.settings import Settings, load_settings
from contracts.tables import STREAM_TABLES
from producers.client import Sent, WorkerClient
from producers.output import (
    EXIT_FAILED,
    EXIT_TIMEOUT,
    EXIT_USAGE,
    print_json,
    print_table,
    stderr,
    stdout,
)

app = typer.Typer(help="Drive the Kafka-controlled batch & streaming worker.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
broker_app = typer.Typer(help="A local single-node KRaft Kafka broker (no Docker).",
                         no_args_is_help=True)
stream_app = typer.Typer(help="The streaming ingest.", no_args_is_help=True)
batch_app = typer.Typer(help="On-demand batch analyses.", no_args_is_help=True)
schema_app = typer.Typer(help="Published contract documents.", no_args_is_help=True)
app.add_typer(broker_app, name="broker")
app.add_typer(stream_app, name="stream")
app.add_typer(batch_app, name="batch")
app.add_typer(schema_app, name="schema")

JsonOpt = typer.Option(False, "--json", help="Print one JSON object on stdout.")
RetriesOpt = typer.Option(
    2, "--retries", min=0, max=20,
    help="Re-send the same command (same command_id) up to N times while no answer comes; "
         "the answer wait is split evenly between the attempts.")
CommandIdOpt = typer.Option(
    None, "--command-id",
    help="Send with this command_id (1-128 chars) instead of a new UUID, e.g. the one a "
         "timed-out run printed: a worker that already has it answers with the original "
         "outcome and runs nothing again.")


def _settings() -> Settings:
    try:
        return load_settings()
    except Exception as exc:  # pydantic ValidationError: a bad PIPELINE_* variable
        stderr.print(f"[red]configuration error:[/red] {exc}")
        raise typer.Exit(EXIT_USAGE) from None


def _fail(message: str, as_json: bool, exit_code: int = EXIT_FAILED, **extra: Any
          ) -> typer.Exit:
    if as_json:
        print_json({"ok": False, "error": {"message": message, **extra}})
    else:
        stderr.print(f"[red]error:[/red] {message}")
    return typer.Exit(exit_code)


def _delivery(sent: Sent, answer: Event | None) -> dict[str, Any]:
    """How the command went out: its id, how many times it was sent, and whether the
    answer replays an earlier one (the worker had seen the id before)."""
    return {"command_id": sent.command_id, "attempts": sent.attempts,
            "duplicate": None if answer is None else bool(answer.data.get("duplicate"))}


def _send_and_answer(client: WorkerClient, command_type: str, payload: dict[str, Any],
                     as_json: bool, timeout: float, *, retries: int = 2,
                     command_id: str | None = None, reuse: str = "") -> tuple[Sent, Event]:
    """Publish a command and wait for its accepted/rejected answer (exit 1 / 3 otherwise).

    With no answer after `timeout / (retries + 1)` seconds, the same command (same bytes,
    same command_id) is sent again, at most `retries` times. Every attempt reads answers
    from where the first one started, so the answer to any copy counts. `reuse` names
    extra flags for the re-run that a timeout suggests (e.g. the batch id).
    """
    if command_id is not None:
        stderr.print(f"reusing command id {command_id}: a worker that already has it answers "
                     "with the original outcome and runs nothing again", soft_wrap=True)
    try:
        sent = client.send(command_type, payload, command_id=command_id)
    except ContractError as exc:
        # The same answer the worker would give, without the round trip.
        if as_json:
            print_json({"ok": False, "status": "rejected",
                        "error": {"code": exc.code.value, "message": exc.message}})
        else:
            stderr.print(f"[red]rejected[/red] {exc.code.value}: {exc.message}")
        raise typer.Exit(EXIT_FAILED) from None
    except (KafkaUnavailable, KafkaException) as exc:
        raise _fail(str(exc), as_json) from None
    attempts = retries + 1
    while True:
        with stderr.status(f"waiting for the worker to answer {command_type} "
                           f"({sent.command_id[:8]})..."):
            answer = client.wait_answer(sent, timeout / attempts)
        if answer is not None or sent.attempts >= attempts:
            break
        # One line per message (soft wrap), so that logs and scripts can grep it.
        stderr.print(f"no answer yet, re-sending command {sent.command_id} "
                     f"(attempt {sent.attempts + 1}/{attempts})", soft_wrap=True)
        try:
            client.resend(sent)
        except KafkaException as exc:
            raise _fail(str(exc), as_json, command_id=sent.command_id) from None
    if answer is None:
        message = (f"no answer to {command_type} {sent.command_id} after {sent.attempts} "
                   f"attempt(s) in {timeout:g}s (is `pipeline worker` running?)")
        if command_type != "ping":
            message += (". The command stays queued for the worker; to follow it without "
                        f"running it twice, re-run with --command-id {sent.command_id}{reuse}")
        if as_json:
            print_json({"ok": False, "error": {"message": message,
                                               "command_id": sent.command_id},
                        "delivery": _delivery(sent, None)})
        else:
            stderr.print(f"[red]error:[/red] {message}", soft_wrap=True)
        raise typer.Exit(EXIT_TIMEOUT)
    if answer.data.get("duplicate"):
        original = answer.data.get("command_type")
        if original not in (None, command_type):
            raise _fail(f"command id {sent.command_id} belongs to an earlier {original} "
                        f"command, not {command_type}; nothing was run", as_json,
                        command_id=sent.command_id, delivery=_delivery(sent, answer))
        stderr.print(f"command {sent.command_id} had been answered before: this is its "
                     "original outcome, and nothing ran twice", soft_wrap=True)
    if answer.type is EventType.COMMAND_REJECTED:
        data = answer.data
        retryable = bool(data.get("retryable"))
        if as_json:
            print_json({"ok": False, "command_id": sent.command_id, "status": "rejected",
                        "error": {"code": data.get("code"), "message": data.get("message"),
                                  "retryable": retryable},
                        "delivery": _delivery(sent, answer)})
        else:
            stderr.print(f"[red]rejected[/red] {data.get('code')}: {data.get('message')}")
        if retryable:
            # A temporary refusal is not remembered: a copy still queued runs once the
            # condition clears, and so does sending this command_id again.
            stderr.print(f"the refusal is temporary: --command-id {sent.command_id} sends "
                         "the same command again later"
                         + (f"; {sent.attempts - 1} copy(ies) still queued may run first"
                            if sent.attempts > 1 else ""), soft_wrap=True)
        raise typer.Exit(EXIT_FAILED)
    return sent, answer


# ---- broker ------------------------------------------------------------------------------


@broker_app.command("start")
def broker_start(timeout: float = typer.Option(90.0, help="Seconds to wait for the broker."),
                 as_json: bool = JsonOpt) -> None:
    """Start the local broker at PIPELINE_KAFKA_BOOTSTRAP (data under DATA_DIR/kafka)."""
    from devkit import broker

    settings = _settings()
    try:
        status = broker.start(settings.kafka_bootstrap, settings.data_dir, timeout=timeout)
    except Exception as exc:
        raise _fail(str(exc), as_json) from None
    if as_json:
        print_json({"ok": True, "running": status.running, "bootstrap": status.bootstrap,
                    "pid": status.pid})
    else:
        print(status.bootstrap)


@broker_app.command("stop")
def broker_stop(as_json: bool = JsonOpt) -> None:
    """Stop the local broker started by `broker start`."""
    from devkit import broker

    settings = _settings()
    stopped = broker.stop(settings.data_dir)
    if as_json:
        print_json({"ok": True, "stopped": stopped})
    else:
        stderr.print("broker stopped" if stopped else "no local broker was running")


@broker_app.command("status")
def broker_status(as_json: bool = JsonOpt) -> None:
    """Say whether a broker answers at PIPELINE_KAFKA_BOOTSTRAP."""
    from devkit import broker

    settings = _settings()
    status = broker.status(settings.kafka_bootstrap, settings.data_dir)
    if as_json:
        print_json({"ok": True, "running": status.running, "managed": status.managed,
                    "pid": status.pid, "bootstrap": status.bootstrap})
    else:
        state = "running" if status.running else "not running"
        who = f" (local broker, pid {status.pid})" if status.managed else ""
        print(f"{status.bootstrap}: {state}{who}")
    if not status.running:
        raise typer.Exit(EXIT_FAILED)


# ---- worker ------------------------------------------------------------------------------


@app.command("worker")
def worker(max_commands: int | None = typer.Option(None, help="Stop after N commands."),
           idle_timeout: float | None = typer.Option(None, help="Stop after S idle seconds."),
           log_level: str = typer.Option("INFO", help="Logging level.")) -> None:
    """Run the worker in the foreground (Ctrl+C or SIGTERM stops it gracefully)."""
    import logging

    # Timestamps collected from Spark come back in the process time zone: pin it to UTC.
    os.environ["TZ"] = "UTC"
    time.tzset()
    logging.basicConfig(level=log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("py4j", "pyspark"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    logging.getLogger("pipeline.kafka").propagate = True
    from worker.app import StopConditions, Worker

    settings = _settings()
    code = Worker(settings, StopConditions(max_commands, idle_timeout)).run()
    raise typer.Exit(code)


@app.command("ping")
def ping(timeout: float = typer.Option(10.0, help="Seconds to wait for worker.pong."),
         retries: int = RetriesOpt, as_json: bool = JsonOpt) -> None:
    """Ask the worker for its health."""
    client = WorkerClient(_settings())
    started = time.monotonic()
    sent, answer = _send_and_answer(client, "ping", {}, as_json, timeout, retries=retries)
    pong = client.wait(sent, lambda e: e.type is EventType.WORKER_PONG
                       and e.command_id == sent.command_id,
                       max(0.5, timeout - (time.monotonic() - started)))
    if pong is None:
        raise _fail(f"no worker.pong within {timeout:g}s", as_json, EXIT_TIMEOUT,
                    command_id=sent.command_id)
    latency = round((time.monotonic() - started) * 1000, 1)
    if as_json:
        print_json({"ok": True, "command_id": sent.command_id, "latency_ms": latency,
                    "worker_id": pong.worker_id, "health": pong.data,
                    "delivery": _delivery(sent, answer)})
    else:
        health = pong.data
        stream = health.get("stream", {})
        print(f"pong from {pong.worker_id} in {latency} ms: spark "
              f"{'alive' if health.get('spark_alive') else 'DOWN'}, up "
              f"{health.get('uptime_seconds', 0):.0f}s, stream {stream.get('state')}, "
              f"batches {health.get('batches')}")


@app.command("stop")
def stop(wait: bool = typer.Option(False, "--wait", help="Wait for worker.stopped."),
         drain_timeout: float | None = typer.Option(None, help="Seconds to let batches finish."),
         timeout: float = typer.Option(180.0, help="Seconds to wait."),
         retries: int = RetriesOpt, command_id: str | None = CommandIdOpt,
         as_json: bool = JsonOpt) -> None:
    """Ask the worker to shut down gracefully."""
    client = WorkerClient(_settings())
    payload = {} if drain_timeout is None else {"drain_timeout_seconds": drain_timeout}
    sent, answer = _send_and_answer(client, "shutdown", payload, as_json, min(timeout, 30),
                                    retries=retries, command_id=command_id)
    stopped = None
    # A replayed answer means an earlier shutdown was accepted, by a worker that may be
    # long gone: there is nothing left to wait for.
    if wait and not answer.data.get("duplicate"):
        with stderr.status("waiting for the worker to stop..."):
            stopped = client.wait(sent, lambda e: e.type is EventType.WORKER_STOPPED
                                  and e.worker_id == answer.worker_id, timeout)
        if stopped is None:
            raise _fail(f"worker did not stop within {timeout:g}s", as_json, EXIT_TIMEOUT)
    if as_json:
        print_json({"ok": True, "command_id": sent.command_id, "worker_id": answer.worker_id,
                    "stopped": stopped is not None, "delivery": _delivery(sent, answer)})
    else:
        stderr.print("worker stopped" if stopped else "shutdown accepted")


# ---- stream ------------------------------------------------------------------------------


@stream_app.command("start")
def stream_start(topic: str | None = typer.Option(None, help="Topic to ingest."),
                 from_: str = typer.Option("latest", "--from",
                                           help="Where a new stream starts: earliest|latest."),
                 trigger: float | None = typer.Option(None, help="Trigger interval (s)."),
                 wait: bool = typer.Option(True, help="Wait for stream.started."),
                 timeout: float = typer.Option(120.0, help="Seconds to wait."),
                 retries: int = RetriesOpt, command_id: str | None = CommandIdOpt,
                 as_json: bool = JsonOpt) -> None:
    """Start the streaming ingest (Kafka -> bronze -> silver, quarantine, quality, gold)."""
    if from_ not in ("earliest", "latest"):
        raise _fail("--from must be earliest or latest", as_json, EXIT_USAGE)
    client = WorkerClient(_settings())
    payload: dict[str, Any] = {"starting_offsets": from_}
    if topic:
        payload["topic"] = topic
    if trigger:
        payload["trigger_seconds"] = trigger
    sent, answer = _send_and_answer(client, "start_stream", payload, as_json, min(timeout, 30),
                                    retries=retries, command_id=command_id)
    event = None
    if answer.data.get("duplicate"):
        wait = False  # its stream.started (or failed) is in the past: report the state now
    if wait:
        with stderr.status("starting the stream..."):
            event = client.wait(sent, lambda e: e.type in (EventType.STREAM_STARTED,
                                                           EventType.STREAM_FAILED)
                                and e.command_id == sent.command_id, timeout)
        if event is None:
            raise _fail(f"stream did not start within {timeout:g}s", as_json, EXIT_TIMEOUT)
        if event.type is EventType.STREAM_FAILED:
            raise _fail(f"stream failed to start: {event.data.get('error')}", as_json)
    state = event.data if event else _stream_state(client, answer, "starting")
    if as_json:
        print_json({"ok": True, "command_id": sent.command_id, "status": state.get("state"),
                    "stream": state, "delivery": _delivery(sent, answer)})
    else:
        stderr.print(f"stream {state.get('state')} on topic {state.get('topic', topic)}")


@stream_app.command("stop")
def stream_stop(wait: bool = typer.Option(True, help="Wait for stream.stopped."),
                timeout: float = typer.Option(120.0, help="Seconds to wait."),
                retries: int = RetriesOpt, command_id: str | None = CommandIdOpt,
                as_json: bool = JsonOpt) -> None:
    """Stop the streaming ingest at a micro-batch boundary."""
    client = WorkerClient(_settings())
    sent, answer = _send_and_answer(client, "stop_stream", {}, as_json, min(timeout, 30),
                                    retries=retries, command_id=command_id)
    event = None
    if wait and not answer.data.get("duplicate"):
        with stderr.status("stopping the stream..."):
            event = client.wait(sent, lambda e: e.type is EventType.STREAM_STOPPED
                                and e.command_id == sent.command_id, timeout)
        if event is None:
            raise _fail(f"stream did not stop within {timeout:g}s", as_json, EXIT_TIMEOUT)
    state = event.data if event else _stream_state(client, answer, "stopping")
    if as_json:
        print_json({"ok": True, "command_id": sent.command_id, "status": state.get("state"),
                    "stream": state, "delivery": _delivery(sent, answer)})
    else:
        stderr.print(f"stream {state.get('state')}")


def _stream_state(client: WorkerClient, answer: Event, default: str) -> dict[str, Any]:
    """The stream's state without waiting: the one in the log when the answer replays an
    earlier one (its lifecycle events are already past), else `default`."""
    if answer.data.get("duplicate"):
        desire = client.registry().streams.get(stream_subject())
        if desire is not None:
            return {**desire.data, "state": desire.state}
    return {"state": default}


@stream_app.command("status")
def stream_status(as_json: bool = JsonOpt) -> None:
    """The stream's state and latest progress, from the event log."""
    registry = _registry(as_json)
    desire = registry.streams.get(stream_subject())
    progress = registry.last_progress.get(stream_progress_subject())
    state = desire.state if desire else "stopped"
    settings = _settings()
    written = (progress or {}).get("layers") or {}
    # How far each table recomputed behind the stream trailed silver at the last progress.
    fresh = (progress or {}).get("freshness_seconds") or {}
    layers = [{"name": spec.name, "layer": spec.layer,
               "path": str(spec.path(settings.delta_dir).resolve()),
               "rows_last_micro_batch": written.get(spec.name),
               "freshness_seconds": fresh.get(spec.name)}
              for spec in STREAM_TABLES]
    out = {"ok": True, "status": state, "stream": desire.data if desire else None,
           "layers": layers, "last_progress": progress}
    if as_json:
        print_json(out)
        return
    print(f"stream: {state}" + (f" (topic {desire.data.get('topic')})" if desire else ""))
    print_table(layers, ["layer", "name", "rows_last_micro_batch", "freshness_seconds",
                         "path"],
                title="layers (kafka -> bronze -> silver | quarantine; quality; gold)")
    if progress:
        print_table([progress], ["batch_id", "rows_in", "rows_bronze", "rows_written",
                                 "rows_quarantined", "rows_dropped", "duplicates",
                                 "late_rows", "rows_per_second", "batch_duration_ms",
                                 "total_rows_written", "total_rows_quarantined",
                                 "total_duplicates"],
                    title="latest micro-batch")
        if progress.get("quality"):
            print_table(progress["quality"], ["layer", "expectation", "action",
                                              "rows_checked", "rows_failed", "metric",
                                              "passed"],
                        title="expectations, latest micro-batch")


# ---- batch -------------------------------------------------------------------------------


def _parse_offset(value: str | None, name: str, as_json: bool) -> Any:
    if value is None:
        return None
    if value in ("earliest", "latest"):
        return value
    text = value.strip()
    if text.startswith("{"):
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            raise _fail(f"{name}: not valid JSON: {text}", as_json, EXIT_USAGE) from None
    if text.lstrip("-").isdigit():
        return int(text)  # epoch milliseconds
    return text  # an ISO-8601 timestamp; the contract validates it


def _parse_filters(filters: list[str], as_json: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in filters:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise _fail(f"--filter takes key=value, got {item!r}", as_json, EXIT_USAGE)
        values: list[Any] = [v for v in value.split(",") if v != ""]
        if key == "is_fraudulent":
            values = [v.lower() == "true" for v in values]
        previous = out.get(key)
        merged = ([] if previous is None else previous if isinstance(previous, list)
                  else [previous]) + values
        out[key] = merged[0] if len(merged) == 1 else merged
    return out


@batch_app.command("run")
def batch_run(
    analysis: AnalysisType = typer.Option(..., "--analysis", help="Analysis type."),
    kafka_topic: str | None = typer.Option(None, help="Read a bounded Kafka range."),
    start_offset: str | None = typer.Option(
        None, help="earliest | latest | per-partition JSON | timestamp (ISO or epoch ms)."),
    end_offset: str | None = typer.Option(None, help="Like --start-offset (default latest)."),
    from_date: str | None = typer.Option(None, help="Delta history start date (YYYY-MM-DD)."),
    to_date: str | None = typer.Option(None, help="Delta history end date, inclusive."),
    filter_: list[str] = typer.Option([], "--filter", help="key=value (repeat; a,b = IN)."),
    batch_id: str | None = typer.Option(
        None, help="Client-chosen batch id (default: one picked here before sending, "
                   "batch-YYYYmmdd-HHMMSS-xxxxxx, so that a re-send names the same batch)."),
    wait: bool = typer.Option(False, "--wait", help="Wait for the end, print the results."),
    timeout: float = typer.Option(1800.0, help="Seconds to wait with --wait."),
    limit: int = typer.Option(20, help="Rows to print with --wait."),
    retries: int = RetriesOpt,
    command_id: str | None = CommandIdOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Submit a batch analysis over a Kafka range or Delta history."""
    if kafka_topic and (from_date or to_date):
        raise _fail("give either --kafka-topic or --from-date/--to-date", as_json, EXIT_USAGE)
    source: dict[str, Any] | None
    if kafka_topic:
        source = {"kind": "kafka", "topic": kafka_topic}
        if start_offset is not None:
            source["start_offset"] = _parse_offset(start_offset, "--start-offset", as_json)
        if end_offset is not None:
            source["end_offset"] = _parse_offset(end_offset, "--end-offset", as_json)
    elif from_date and to_date:
        source = {"kind": "delta", "start_date": from_date, "end_date": to_date}
    elif analysis is AnalysisType.TRAIN_FRAUD_MODEL and not (from_date or to_date):
        source = None  # the worker trains on silver's last 7 days
    else:
        raise _fail("give --kafka-topic T, or --from-date D --to-date D", as_json, EXIT_USAGE)
    # The batch id is chosen before the first send: every re-send then names the same
    # batch, and the worker's dedupe by command_id makes the copies no-ops.
    bid = batch_id or f"batch-{datetime.now(UTC):%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}"
    payload: dict[str, Any] = {"analysis_type": analysis.value, "source": source,
                               "filters": _parse_filters(filter_, as_json), "batch_id": bid}
    if source is None:
        del payload["source"]
    client = WorkerClient(_settings())
    sent, answer = _send_and_answer(client, "run_batch", payload, as_json, min(timeout, 30),
                                    retries=retries, command_id=command_id,
                                    reuse=f" --batch-id {bid}")
    # A replayed answer names the batch of the original command, which may differ.
    bid = answer.data.get("batch_id") or bid
    delivery = _delivery(sent, answer)
    record = _known_batch(client, answer, bid)
    if not wait:
        if record is None:
            first = client.wait(sent, lambda e: e.type.value.startswith("batch.")
                                and e.data.get("batch_id") == bid, 30)
            record = first.data if first else {"batch_id": bid, "status": "pending"}
        _print_record(record, as_json, delivery)
        return
    if record is None or record.get("status") not in _TERMINAL:
        final = _follow_batch(client, sent, bid, timeout)
        if final is None:
            raise _fail(f"batch {bid} did not finish within {timeout:g}s", as_json,
                        EXIT_TIMEOUT, batch_id=bid, command_id=sent.command_id)
        record = final.data
    _print_record(record, as_json, delivery)
    if not as_json and record.get("status") == BatchStatus.COMPLETED:
        for name, pointer in (record.get("aggregated") or {}).items():
            _print_results(pointer["path"], name, limit, 0, False)
    if record.get("status") != BatchStatus.COMPLETED:
        raise typer.Exit(EXIT_FAILED)


def _follow_batch(client: WorkerClient, sent: Sent, batch_id: str, timeout: float
                  ) -> Event | None:
    started = time.monotonic()
    with stderr.status(f"batch {batch_id}: pending") as status:
        def show(event: Event) -> None:
            if event.data.get("batch_id") == batch_id:
                status.update(f"batch {batch_id}: {event.data.get('status')} "
                              f"({time.monotonic() - started:.0f}s)")

        return client.wait(
            sent, lambda e: e.type in (EventType.BATCH_COMPLETED, EventType.BATCH_FAILED,
                                       EventType.BATCH_CANCELLED)
            and e.data.get("batch_id") == batch_id, timeout, on_event=show)


_TERMINAL = (BatchStatus.COMPLETED, BatchStatus.FAILED, BatchStatus.CANCELLED)


def _known_batch(client: WorkerClient, answer: Event, batch_id: str
                 ) -> dict[str, Any] | None:
    """The batch's record from the log when the answer replays an earlier one: its events
    may all be past already, so waiting for new ones could wait forever."""
    if not answer.data.get("duplicate"):
        return None
    record = client.registry().batches.get(batch_id)
    return None if record is None else record.model_dump(mode="json")


def _print_record(record: dict[str, Any], as_json: bool,
                  delivery: dict[str, Any] | None = None) -> None:
    if as_json:
        out = {"ok": record.get("status") not in ("failed", "cancelled"), **record}
        if delivery is not None:
            out["delivery"] = delivery
        print_json(out)
        return
    rows = [{"field": k, "value": v} for k, v in record.items() if v not in (None, {}, [])]
    print_table(rows, ["field", "value"], title=f"batch {record.get('batch_id')}")


def _registry(as_json: bool) -> Any:
    try:
        return WorkerClient(_settings()).registry()
    except KafkaUnavailable as exc:
        raise _fail(str(exc), as_json) from None


@batch_app.command("status")
def batch_status(batch_id: str, as_json: bool = JsonOpt) -> None:
    """The batch record (status, times, result pointers, error)."""
    record = _registry(as_json).batches.get(batch_id)
    if record is None:
        raise _fail(f"no batch {batch_id!r}", as_json, code="BATCH_NOT_FOUND")
    _print_record(record.model_dump(mode="json"), as_json)


@batch_app.command("list")
def batch_list(status: BatchStatus | None = typer.Option(None, help="Only this status."),
               limit: int = typer.Option(50, help="At most N, newest first."),
               as_json: bool = JsonOpt) -> None:
    """Batches known to the event log, newest first."""
    records = sorted(_registry(as_json).batches.values(), key=lambda r: r.submitted_at,
                     reverse=True)
    if status is not None:
        records = [r for r in records if r.status == status]
    total = len(records)
    records = records[:limit]
    if as_json:
        print_json({"ok": True, "total": total,
                    "batches": [r.model_dump(mode="json") for r in records]})
        return
    print_table([{"batch_id": r.batch_id, "status": r.status.value,
                  "analysis": r.analysis_type, "submitted": r.submitted_at,
                  "rows": r.row_count, "attempts": r.attempts} for r in records],
                ["batch_id", "status", "analysis", "submitted", "rows", "attempts"],
                title=f"{total} batch(es)")


@batch_app.command("cancel")
def batch_cancel(batch_id: str, wait: bool = typer.Option(True, help="Wait for the end."),
                 timeout: float = typer.Option(120.0, help="Seconds to wait."),
                 retries: int = RetriesOpt, command_id: str | None = CommandIdOpt,
                 as_json: bool = JsonOpt) -> None:
    """Cancel a pending or running batch."""
    client = WorkerClient(_settings())
    sent, answer = _send_and_answer(client, "cancel_batch", {"batch_id": batch_id}, as_json,
                                    min(timeout, 30), retries=retries, command_id=command_id)
    record = _known_batch(client, answer, batch_id)
    if wait and (record is None or record.get("status") not in _TERMINAL):
        final = _follow_batch(client, sent, batch_id, timeout)
        record = final.data if final else None
    _print_record(record or {"batch_id": batch_id, "status": "cancelling"}, as_json,
                  _delivery(sent, answer))


@batch_app.command("results")
def batch_results(batch_id: str,
                  analysis: str | None = typer.Option(None, help="Which aggregated table."),
                  raw: bool = typer.Option(False, "--raw", help="The batch's input rows."),
                  limit: int = typer.Option(100, help="Rows per page."),
                  offset: int = typer.Option(0, help="Rows to skip."),
                  as_json: bool = JsonOpt) -> None:
    """Read a batch's results straight from Delta (no JVM)."""
    if raw and analysis:
        raise _fail("give --analysis or --raw, not both", as_json, EXIT_USAGE)
    if limit < 0 or offset < 0:
        raise _fail("--limit and --offset must be >= 0", as_json, EXIT_USAGE)
    record = _registry(as_json).batches.get(batch_id)
    if record is None:
        raise _fail(f"no batch {batch_id!r}", as_json, code="BATCH_NOT_FOUND")
    if record.status != BatchStatus.COMPLETED:
        raise _fail(f"batch {batch_id} is {record.status.value}, not completed", as_json,
                    code="BATCH_NOT_COMPLETED", status=record.status.value)
    if record.model is not None:
        raise _fail(f"batch {batch_id} trained fraud model {record.model.version} and has no "
                    f"tables; see `pipeline batch status {batch_id}`", as_json, EXIT_USAGE)
    if raw:
        pointer, name = record.raw, "raw"
    else:
        name = analysis or (record.analyses[0] if len(record.analyses) == 1 else None)
        if name is None:
            raise _fail(f"batch {batch_id} has several analyses; pick one with --analysis: "
                        f"{', '.join(record.aggregated)}", as_json, EXIT_USAGE)
        pointer = record.aggregated.get(name)
        if pointer is None:
            raise _fail(f"batch {batch_id} has no {name!r} results; it has: "
                        f"{', '.join(record.aggregated)}", as_json, EXIT_USAGE)
    assert pointer is not None
    page = _print_results(pointer.path, name, limit, offset, as_json, pointer.version,
                          batch_id=batch_id)
    if page is None:
        raise typer.Exit(EXIT_FAILED)
    _exit_skipping_native_teardown(0)


def _exit_skipping_native_teardown(code: int) -> None:
    """Exit once the output is out, without interpreter teardown: delta-rs/pyarrow native
    threads that outlive a read can abort the process while it shuts down (SIGABRT,
    "terminate called without an active exception"; about 1 run in 40 on a partitioned
    table), which would turn a printed answer into a failed exit code."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _print_results(path: str, name: str, limit: int, offset: int, as_json: bool,
                   version: int | None = None, batch_id: str | None = None) -> Any:
    from producers.results import read_page

    try:
        page = read_page(path, limit=limit, offset=offset, version=version)
    except Exception as exc:
        raise _fail(f"cannot read {path}: {exc}", as_json) from None
    if as_json:
        print_json({"ok": True, "batch_id": batch_id, "table": name, "path": page.path,
                    "version": page.version, "total": page.total, "offset": page.offset,
                    "limit": page.limit, "has_more": page.has_more, "rows": page.rows})
    else:
        print_table(page.rows, title=f"{name}: rows {page.offset + 1}-"
                    f"{page.offset + len(page.rows)} of {page.total}")
        if page.has_more:
            stderr.print(f"more rows: --offset {page.offset + len(page.rows)}")
    return page


# ---- events, data, schemas -----------------------------------------------------------------


@app.command("events")
def events(follow: bool = typer.Option(False, "--follow", help="Keep printing new events."),
           from_beginning: bool = typer.Option(False, "--from-beginning",
                                               help="Start at the oldest event."),
           as_json: bool = JsonOpt) -> None:
    """Print events (JSON lines with --json)."""
    from contracts.kafka_clients import read_events

    settings = _settings()
    try:
        from contracts.kafka_clients import check_reachable

        check_reachable(settings)
        # Without --from-beginning and without --follow, show the log's recent history.
        start_at_begin = from_beginning or not follow
        for event in read_events(settings, from_beginning=start_at_begin, follow=follow):
            if as_json:
                sys.stdout.write(event.model_dump_json() + "\n")
                sys.stdout.flush()
            else:
                stdout.print(_describe(event), highlight=False)
    except KafkaUnavailable as exc:
        raise _fail(str(exc), as_json) from None
    except KeyboardInterrupt:
        pass


def _describe(event: Event) -> str:
    data = event.data
    when = event.occurred_at.isoformat(timespec="seconds")
    detail = ""
    if event.type.value.startswith("batch."):
        detail = f"{data.get('analysis_type')} rows={data.get('row_count')}"
        if data.get("error"):
            detail += f" error={data['error']}"
    elif event.type.value.startswith("backfill."):
        detail = (f"{data.get('topic')} read={data.get('records_read')} "
                  f"bronze={data.get('bronze_new')} silver={data.get('silver_new')} "
                  f"duplicates={data.get('duplicates')} "
                  f"quarantined={data.get('quarantined')} "
                  f"chunks={data.get('chunks_done')}/{data.get('chunks_total')}")
        if data.get("error"):
            detail += f" error={data['error']}"
    elif event.type.value.startswith("quality."):
        detail = (f"{data.get('action')} failure_rate={data.get('failure_rate')} "
                  f"threshold={data.get('threshold')} over {data.get('window_batches')} "
                  f"micro-batches (micro-batch {data.get('micro_batch_id')})")
    elif event.type is EventType.COMMAND_REJECTED:
        detail = f"{data.get('code')}: {data.get('message')}"
    elif event.type is EventType.STREAM_PROGRESS:
        detail = (f"in={data.get('rows_in')} bronze={data.get('rows_bronze', 0)} "
                  f"written={data.get('rows_written')} "
                  f"quarantined={data.get('rows_quarantined')} "
                  f"duplicates={data.get('duplicates', 0)} "
                  f"rate={data.get('rows_per_second')}/s")
    elif event.type is EventType.STREAM_FAILED and data.get("error"):
        detail = f"error={data['error']}"
    return f"{when} {event.type.value:<18} {event.subject} {detail}".rstrip()


@app.command("generate")
def generate(rate: float = typer.Option(10.0, help="Events per second (0 = as fast as possible)."),
             count: int | None = typer.Option(None, help="Stop after N records."),
             topic: str | None = typer.Option(None, help="Target topic."),
             invalid_rate: float = typer.Option(0.0, help="Fraction of malformed records."),
             seed: int | None = typer.Option(None, help="Random seed."),
             as_json: bool = JsonOpt) -> None:
    """Produce realistic TransactionEvents to Kafka."""
    from producers.kafka_generate import DeliveryError, generate_to_kafka

    if not 0 <= invalid_rate <= 1:
        raise _fail("--invalid-rate must be between 0 and 1", as_json, EXIT_USAGE)
    try:
        summary = generate_to_kafka(_settings(), topic=topic, rate=rate or None, count=count,
                                    invalid_rate=invalid_rate, seed=seed,
                                    progress=not as_json)
    except (KafkaUnavailable, ConnectionError, DeliveryError) as exc:
        raise _fail(str(exc), as_json) from None
    result = {"ok": True, "topic": summary.topic, "valid": summary.valid,
              "invalid": summary.invalid, "seconds": round(summary.seconds, 3)}
    if as_json:
        print_json(result)
    else:
        stderr.print(f"produced {summary.valid} valid + {summary.invalid} invalid records to "
                     f"{summary.topic} in {summary.seconds:.1f}s")


@app.command("seed")
def seed_history(records: int = typer.Option(1_000_000, help="Records to write."),
                 days: int = typer.Option(90, help="Days of history, ending today."),
                 kafka_topic: str | None = typer.Option(None, help="Also produce to this topic."),
                 seed: int | None = typer.Option(
                     None, help="Random seed. The same --records/--days/--seed again writes "
                                "nothing twice (an interrupted run is completed). Without "
                                "--seed a random seed is drawn and printed, and every run "
                                "appends new rows."),
                 as_json: bool = JsonOpt) -> None:
    """Write realistic history into silver.transactions (delta/silver/transactions),
    enriched like the stream's rows (idempotent with --seed)."""
    from contracts.tables import SILVER_TRANSACTIONS
    from producers.seeder import LegacyLayout
    from producers.seeder import seed_history as run_seed

    if records < 1 or days < 1:
        raise _fail("--records and --days must be >= 1", as_json, EXIT_USAGE)
    from producers.kafka_generate import DeliveryError

    try:
        summary = run_seed(_settings(), records=records, days=days, kafka_topic=kafka_topic,
                           seed=seed, progress=not as_json)
    except (KafkaUnavailable, ConnectionError, DeliveryError, LegacyLayout) as exc:
        raise _fail(str(exc), as_json) from None
    out = {"ok": True, "records": summary.records, "by_category": summary.by_category,
           "first_date": summary.first_date, "last_date": summary.last_date,
           "avg_order_value": summary.avg_order_value, "fraud_rate": summary.fraud_rate,
           "kafka_topic": summary.kafka_topic, "seconds": round(summary.seconds, 3),
           "seed": summary.seed, "skipped_records": summary.skipped_records,
           "app_id": summary.app_id, "table": SILVER_TRANSACTIONS.name,
           "path": summary.table_path, "version": summary.table_version}
    if as_json:
        print_json(out)
        return
    if summary.skipped_records:
        stderr.print(f"{summary.skipped_records} of {records} records were already in the "
                     f"table from an earlier run with the same arguments (seed "
                     f"{summary.seed}); they were not written again")
        if not summary.records:
            return
    else:
        stderr.print(f"seed {summary.seed}: run again with --seed {summary.seed} and the "
                     "same --records/--days to repeat it without duplicating rows")
    stderr.print(f"wrote {summary.records} records to {SILVER_TRANSACTIONS.name} "
                 f"({summary.first_date} .. "
                 f"{summary.last_date}) in {summary.seconds:.1f}s; average order value "
                 f"{summary.avg_order_value:.2f}; fraud rate {summary.fraud_rate:.2%}")
    print_table([{"category": k, "records": v} for k, v in sorted(
        summary.by_category.items(), key=lambda kv: -kv[1])], title="records per category")


@schema_app.command("export")
def schema_export(out: Path = typer.Option(Path("schemas"), help="Output directory."),
                  as_json: bool = JsonOpt) -> None:
    """Write JSON Schemas and the AsyncAPI document generated from the contract models."""
    from contracts.schema_export import export_schemas

    files = export_schemas(out)
    if as_json:
        print_json({"ok": True, "files": [str(f) for f in files]})
    else:
        for f in files:
            print(f)


# Command groups kept in their own modules (they use the helpers above, hence the import
# at the bottom).
from producers import cli_backfill, cli_quality, cli_tables  # noqa: E402

cli_backfill.register(app)
cli_quality.register(app)
cli_tables.register(app)

from producers import cli_fraud  # noqa: E402

cli_fraud.register(app)

from producers import cli_schedule  # noqa: E402

cli_schedule.register(app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
