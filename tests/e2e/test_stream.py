"""Streaming ingest through a real worker: Kafka -> Delta exactly once, quarantine + DLQ,
the live dashboard table, and recovery across stop/start and kill -9."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import orjson
import pandas as pd
import pytest

from contracts.events import EventType
from producers.generator import INVALID_KINDS, TransactionGenerator
from tests.e2e.conftest import WorkerProcess
from tests.e2e.delta_reads import consume_all, count, produce, table, wait_until
from worker.storage import StoragePaths

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]


def paths(worker: WorkerProcess) -> StoragePaths:
    return StoragePaths(worker.settings)


def ingested(worker: WorkerProcess) -> int:
    p = paths(worker)
    return count(p.transactions) + count(p.quarantine)


def dashboard_events(base: datetime, prefix: str = "dash-") -> list[dict]:
    """Hand-built events: three categories, known amounts, a status the dashboard skips."""
    gen = TransactionGenerator(seed=42)
    specs = [  # (seconds after base, category, amount, status, fraud)
        (5, "books", 10.0, "completed", False),
        (65, "books", 20.0, "pending", True),
        (70, "books", 30.0, "failed", False),   # not counted: only completed/pending
        (125, "toys", 40.0, "completed", False),
        (130, "books", 50.0, "completed", False),
        (250, "toys", 60.0, "completed", True),
    ]
    events = []
    for i, (offset, category, amount, status, fraud) in enumerate(specs):
        event = gen.event(base + timedelta(seconds=offset))
        event.update(transaction_id=f"{prefix}{i}", category=category, total_amount=amount,
                     transaction_status=status, is_fraudulent=fraud, customer_id=f"C-{i % 3}")
        events.append(event)
    return events


def expected_windows(events: list[dict]) -> dict[tuple[datetime, str], dict]:
    """Independent computation of 5-minute windows sliding by 1 minute."""
    out: dict[tuple[datetime, str], dict] = defaultdict(
        lambda: {"txn_count": 0, "window_revenue": 0.0, "fraud_alerts": 0, "customers": set()})
    for e in events:
        if e["transaction_status"] not in ("completed", "pending"):
            continue
        ts = datetime.fromisoformat(e["event_timestamp"].replace("Z", "+00:00"))
        minute = ts.replace(second=0, microsecond=0)
        for back in range(5):
            key = (minute - timedelta(minutes=back), e["category"])
            w = out[key]
            w["txn_count"] += 1
            w["window_revenue"] += e["total_amount"]
            w["fraud_alerts"] += int(e["is_fraudulent"])
            w["customers"].add(e["customer_id"])
    return out


def test_dashboard_reflects_new_events_within_a_trigger_or_two(
        running_worker: WorkerProcess) -> None:
    worker = running_worker
    base = (datetime.now(UTC) - timedelta(minutes=6)).replace(second=0, microsecond=0)
    events = dashboard_events(base)
    produce(worker.settings, worker.settings.stream_topic,
            [(e["transaction_id"], orjson.dumps(e)) for e in events])
    code, out = worker.cli_json("stream", "start", "--from", "earliest")
    assert code == 0 and out["status"] == "running", out
    wait_until(lambda: count(paths(worker).transactions) == len(events), 180,
               "the dashboard events to land")
    expected = expected_windows(events)
    wait_until(lambda: count(paths(worker).stream_aggregations) >= len(expected), 60,
               "the dashboard windows")
    dash = table(paths(worker).stream_aggregations)
    assert dash is not None
    got = {(pd.Timestamp(r.window_start).to_pydatetime().replace(tzinfo=UTC), r.category): r
           for r in dash.itertuples()}
    assert set(got) == set(expected)
    for key, want in expected.items():
        row = got[key]
        assert row.txn_count == want["txn_count"], key
        assert row.window_revenue == pytest.approx(want["window_revenue"]), key
        assert row.avg_order_value == pytest.approx(want["window_revenue"] / want["txn_count"])
        assert row.fraud_alerts == want["fraud_alerts"], key
        assert row.approx_unique_customers == len(want["customers"]), key
        assert pd.Timestamp(row.window_end) - pd.Timestamp(row.window_start) == \
            pd.Timedelta(minutes=5)

    # A second round two minutes later, once the table exists: its windows overlap the first
    # round's, so the update must replace those, add the new ones and keep the rest.
    more = dashboard_events(base + timedelta(minutes=2), prefix="dash2-")
    produce(worker.settings, worker.settings.stream_topic,
            [(e["transaction_id"], orjson.dumps(e)) for e in more])
    both = expected_windows(events + more)
    wait_until(lambda: not dashboard_differences(worker, both), 120,
               "the dashboard to reflect the second round")
    assert dashboard_differences(worker, both) == []


def dashboard_differences(worker: WorkerProcess,
                          expected: dict[tuple[datetime, str], dict]) -> list[str]:
    """How the dashboard table differs from `expected` (empty: it matches)."""
    dash = table(paths(worker).stream_aggregations)
    if dash is None:
        return ["no dashboard table"]
    got = {(pd.Timestamp(r.window_start).to_pydatetime().replace(tzinfo=UTC), r.category): r
           for r in dash.itertuples()}
    if len(got) != len(dash):
        return [f"{len(dash) - len(got)} duplicate (window_start, category) rows"]
    problems = [f"window {key} missing" for key in expected.keys() - got.keys()]
    problems += [f"window {key} unexpected" for key in got.keys() - expected.keys()]
    for key in expected.keys() & got.keys():
        row, want = got[key], expected[key]
        seen = (row.txn_count, round(row.window_revenue, 6), row.fraud_alerts,
                row.approx_unique_customers)
        wanted = (want["txn_count"], round(want["window_revenue"], 6), want["fraud_alerts"],
                  len(want["customers"]))
        if seen != wanted:
            problems.append(f"window {key}: {seen} != {wanted}")
    return problems


def test_valid_rows_land_once_and_invalid_ones_are_quarantined(
        running_worker: WorkerProcess) -> None:
    worker = running_worker
    before_tx = count(paths(worker).transactions)
    gen = TransactionGenerator(seed=7)
    valid = [gen.event() for _ in range(400)]
    invalid = [gen.invalid_record(kind) for kind in INVALID_KINDS for _ in range(3)]
    records = [(e["transaction_id"], orjson.dumps(e)) for e in valid]
    records += [(key, raw) for key, raw, _ in invalid]
    produce(worker.settings, worker.settings.stream_topic, records)

    total = before_tx + len(records)
    wait_until(lambda: ingested(worker) == total, 240, f"{total} rows in Delta")

    tx = table(paths(worker).transactions)
    assert tx is not None
    assert len(tx) == before_tx + len(valid)
    assert tx["transaction_id"].is_unique
    assert set(e["transaction_id"] for e in valid) <= set(tx["transaction_id"])
    assert tx["processing_timestamp"].notna().all()
    assert (tx["event_date"].astype(str) ==
            pd.to_datetime(tx["event_timestamp"], utc=True).dt.strftime("%Y-%m-%d")).all()

    quarantine = table(paths(worker).quarantine)
    assert quarantine is not None and len(quarantine) == len(invalid)
    assert sorted(bytes(v) for v in quarantine["raw_value"]) == \
        sorted(raw for _, raw, _ in invalid)
    assert quarantine["reason"].str.len().gt(0).all()
    assert quarantine["topic"].eq(worker.settings.stream_topic).all()
    assert quarantine["offset"].notna().all() and quarantine["partition"].notna().all()

    wait_until(lambda: len(consume_all(worker.settings, worker.settings.dlq_topic))
               >= len(invalid), 60, "the DLQ copies")
    dlq = consume_all(worker.settings, worker.settings.dlq_topic)
    assert sorted(m.value() for m in dlq) == sorted(raw for _, raw, _ in invalid)
    headers = dict(dlq[0].headers())
    assert headers["error.reason"] and headers["source.topic"] == \
        worker.settings.stream_topic.encode()

    def progress_events() -> list:
        return [e for e in worker.events() if e.type is EventType.STREAM_PROGRESS]

    # stream.progress follows the micro-batch's last write (quality.metrics), a little
    # after the rows are readable.
    wait_until(lambda: sum(e.data["rows_quarantined"] for e in progress_events())
               >= len(invalid), 120, "stream.progress of the quarantined records")
    progress = progress_events()
    assert sum(e.data["rows_quarantined"] for e in progress) == len(invalid)
    assert {"rows_in", "rows_per_second", "batch_duration_ms", "offsets"} <= set(progress[-1].data)


def test_starting_a_running_stream_is_rejected(running_worker: WorkerProcess) -> None:
    code, out = running_worker.cli_json("stream", "start")
    assert code == 1 and out["error"]["code"] == "STREAM_ALREADY_RUNNING"
    code, out = running_worker.cli_json("stream", "status")
    assert code == 0 and out["status"] == "running"
    assert out["last_progress"]["total_rows_written"] >= 0


def test_stop_and_start_keep_totals_exact(running_worker: WorkerProcess) -> None:
    worker = running_worker
    code, out = worker.cli_json("stream", "stop")
    assert code == 0 and out["status"] == "stopped", out
    before = ingested(worker)
    gen = TransactionGenerator(seed=8)
    more = [gen.event() for _ in range(300)]
    produce(worker.settings, worker.settings.stream_topic,
            [(e["transaction_id"], orjson.dumps(e)) for e in more])
    assert ingested(worker) == before  # nothing is read while stopped
    code, out = worker.cli_json("stream", "start")
    assert code == 0, out
    wait_until(lambda: ingested(worker) == before + len(more), 180, "the records sent while "
               "stopped to be ingested from the checkpoint")
    tx = table(paths(worker).transactions)
    assert tx is not None and tx["transaction_id"].is_unique


def test_kill_9_during_streaming_loses_and_duplicates_nothing(
        new_worker: Callable[[], WorkerProcess]) -> None:
    worker = new_worker()
    worker.start()
    code, out = worker.cli_json("stream", "start", "--from", "earliest")
    assert code == 0, out
    gen = TransactionGenerator(seed=9)
    first = [gen.event() for _ in range(3000)]
    produce(worker.settings, worker.settings.stream_topic,
            [(e["transaction_id"], orjson.dumps(e)) for e in first])
    wait_until(lambda: count(paths(worker).transactions) > 0, 180, "the first rows")
    worker.kill9()  # in the middle of ingesting, most likely inside a micro-batch

    second = [gen.event() for _ in range(1000)]
    produce(worker.settings, worker.settings.stream_topic,
            [(e["transaction_id"], orjson.dumps(e)) for e in second])
    worker.start()  # the stream's desired state was running: it resumes by itself
    expected = {e["transaction_id"] for e in first + second}
    wait_until(lambda: count(paths(worker).transactions) >= len(expected), 300,
               "every record after the restart")
    tx = table(paths(worker).transactions)
    assert tx is not None
    assert len(tx) == len(expected)
    assert set(tx["transaction_id"]) == expected
