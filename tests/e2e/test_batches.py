"""Batch analyses through a real worker, checked against independent pandas computations
over the same rows: Delta history and Kafka ranges, filters, rejections, failures,
cancellation, concurrency with the stream, and paginated results."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson
import pandas as pd
import pytest
from deltalake import DeltaTable

from contracts.events import EventType
from producers.generator import TransactionGenerator
from tests.e2e.conftest import WorkerProcess
from tests.e2e.delta_reads import produce, table
from worker.storage import StoragePaths

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def seeded(running_worker: WorkerProcess) -> WorkerProcess:
    result = running_worker.cli("seed", "--records", "20000", "--days", "10", "--seed", "3",
                                "--json")
    assert result.returncode == 0, result.stderr
    assert orjson.loads(result.stdout)["records"] == 20000
    return running_worker


def history(worker: WorkerProcess) -> pd.DataFrame:
    df = table(StoragePaths(worker.settings).transactions)
    assert df is not None
    return df


def run(worker: WorkerProcess, *args: str) -> tuple[int, dict[str, Any]]:
    return worker.cli_json("batch", "run", *args, "--wait", "--timeout", "600")


def results(worker: WorkerProcess, batch_id: str, *args: str) -> dict[str, Any]:
    code, out = worker.cli_json("batch", "results", batch_id, "--limit", "100000", *args)
    assert code == 0, out
    return out


def reference_revenue_by_category(rows: pd.DataFrame) -> pd.DataFrame:
    done = rows[rows["transaction_status"] == "completed"]
    out = done.groupby("category").agg(
        total_revenue=("total_amount", "sum"),
        avg_order_value=("total_amount", "mean"),
        transaction_count=("transaction_id", "count"),
        total_units_sold=("quantity", "sum"),
        avg_discount_pct=("discount_percent", "mean"),
        unique_customers=("customer_id", "nunique"),
    ).reset_index()
    return out.sort_values("total_revenue", ascending=False).reset_index(drop=True)


def assert_frames_match(got: list[dict[str, Any]], want: pd.DataFrame) -> None:
    assert len(got) == len(want)
    for row, (_, ref) in zip(got, want.iterrows(), strict=True):
        for column in want.columns:
            expected = ref[column]
            if isinstance(expected, float):
                assert row[column] == pytest.approx(expected, rel=1e-9, abs=1e-6), column
            else:
                assert row[column] == expected, (column, row)


def test_history_batch_with_filters_matches_pandas(seeded: WorkerProcess) -> None:
    rows = history(seeded)
    end = date.today()
    start = end - timedelta(days=4)
    code, record = run(seeded, "--analysis", "revenue_by_category", "--from-date", str(start),
                       "--to-date", str(end), "--filter", "region=west,north",
                       "--filter", "channel=web", "--batch-id", "hist-1")
    assert code == 0, record
    assert record["status"] == "completed" and record["batch_id"] == "hist-1"

    dates = pd.to_datetime(rows["event_timestamp"], utc=True).dt.date
    mine = rows[(dates >= start) & (dates <= end) & rows["region"].isin(["west", "north"])
                & (rows["channel"] == "web")]
    assert record["row_count"] == len(mine) > 0
    assert record["raw"]["row_count"] == len(mine)
    raw = DeltaTable(record["raw"]["path"])
    assert raw.metadata().partition_columns == ["category"]
    raw_df = raw.to_pandas()
    assert set(raw_df["batch_id"]) == {"hist-1"}
    assert sorted(raw_df["transaction_id"]) == sorted(mine["transaction_id"])

    out = results(seeded, "hist-1", "--analysis", "revenue_by_category")
    assert out["total"] == len(out["rows"]) and out["has_more"] is False
    assert_frames_match(out["rows"], reference_revenue_by_category(mine))


def test_kafka_range_batch_with_per_partition_offsets(seeded: WorkerProcess) -> None:
    worker = seeded
    topic = worker.settings.batch_topic
    gen = TransactionGenerator(seed=11)
    events = [gen.event(datetime(2025, 3, 1, tzinfo=UTC) + timedelta(minutes=i))
              for i in range(600)]
    produce(worker.settings, topic, [(e["transaction_id"], orjson.dumps(e)) for e in events])
    code, record = run(worker, "--analysis", "channel_performance", "--kafka-topic", topic,
                       "--start-offset", "earliest", "--end-offset", "latest",
                       "--batch-id", "kafka-all")
    assert code == 0, record
    assert record["row_count"] == len(events)

    frame = pd.DataFrame(events)
    done = frame[frame["transaction_status"] == "completed"]
    ref = done.groupby("channel").agg(
        transaction_count=("transaction_id", "count"),
        total_revenue=("total_amount", "sum"),
        unique_customers=("customer_id", "nunique"),
        fraud_count=("is_fraudulent", lambda s: int((s == True).sum())),  # noqa: E712
    ).reset_index().sort_values("total_revenue", ascending=False)
    out = results(worker, "kafka-all")["rows"]
    assert [r["channel"] for r in out] == list(ref["channel"])
    for row, (_, want) in zip(out, ref.iterrows(), strict=True):
        assert row["transaction_count"] == want["transaction_count"]
        assert row["total_revenue"] == pytest.approx(want["total_revenue"])
        assert row["unique_customers"] == want["unique_customers"]
        assert row["fraud_count"] == want["fraud_count"]
        assert row["fraud_rate_pct"] == pytest.approx(
            want["fraud_count"] / want["transaction_count"] * 100, abs=1e-4)

    # A sub-range of one partition: exactly end - start records.
    code, record = run(worker, "--analysis", "revenue_by_category", "--kafka-topic", topic,
                       "--start-offset", '{"0": 10, "1": 0, "2": 0}',
                       "--end-offset", '{"0": 50, "1": 0, "2": 0}', "--batch-id", "kafka-sub")
    assert code == 0, record
    assert record["row_count"] == 40


def test_full_report_writes_every_analysis(seeded: WorkerProcess) -> None:
    end = date.today()
    code, record = run(seeded, "--analysis", "full_report", "--from-date",
                       str(end - timedelta(days=2)), "--to-date", str(end),
                       "--batch-id", "report-1")
    assert code == 0, record
    assert set(record["aggregated"]) == {
        "revenue_by_category", "revenue_by_region", "payment_analysis",
        "customer_segmentation", "fraud_analysis", "hourly_trends", "channel_performance",
        "inventory_velocity"}
    for name, pointer in record["aggregated"].items():
        assert pointer["path"].endswith(f"batches/report-1/aggregated/{name}")
        assert DeltaTable(pointer["path"]).version() == pointer["version"]
        assert len(DeltaTable(pointer["path"]).to_pandas()) == pointer["row_count"]


def test_results_pagination(seeded: WorkerProcess) -> None:
    everything = results(seeded, "report-1", "--analysis", "customer_segmentation")["rows"]
    code, page = seeded.cli_json("batch", "results", "report-1", "--analysis",
                                 "customer_segmentation", "--limit", "7", "--offset", "5")
    assert code == 0, page
    assert page["rows"] == everything[5:12]
    assert page["total"] == len(everything) and page["has_more"] is True
    code, last = seeded.cli_json("batch", "results", "report-1", "--analysis",
                                 "customer_segmentation", "--limit", "7", "--offset",
                                 str(len(everything) - 3))
    assert len(last["rows"]) == 3 and last["has_more"] is False
    code, raw = seeded.cli_json("batch", "results", "report-1", "--raw", "--limit", "2")
    assert code == 0 and len(raw["rows"]) == 2 and raw["total"] > 2


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["--analysis", "revenue_by_category", "--from-date", "2025-01-01", "--to-date",
          "2025-01-02", "--batch-id", "hist-1"], "BATCH_ALREADY_EXISTS"),
        (["--analysis", "revenue_by_category", "--from-date", "2025-02-01", "--to-date",
          "2025-01-01"], "INVALID_REQUEST"),
        (["--analysis", "revenue_by_category", "--from-date", "2025-01-01", "--to-date",
          "2025-01-02", "--filter", "password=x"], "INVALID_REQUEST"),
        (["--analysis", "revenue_by_category", "--from-date", "2025-01-01", "--to-date",
          "2025-01-02", "--batch-id", "no spaces allowed"], "INVALID_REQUEST"),
    ],
)
def test_invalid_batches_are_rejected(seeded: WorkerProcess, args: list[str],
                                      code: str) -> None:
    status, out = seeded.cli_json("batch", "run", *args)
    assert status == 1, out
    assert out["error"]["code"] == code


def test_cancel_rejections(seeded: WorkerProcess) -> None:
    status, out = seeded.cli_json("batch", "cancel", "no-such-batch")
    assert status == 1 and out["error"]["code"] == "BATCH_NOT_FOUND"
    status, out = seeded.cli_json("batch", "cancel", "hist-1")
    assert status == 1 and out["error"]["code"] == "BATCH_NOT_CANCELLABLE"


@pytest.mark.parametrize(
    "source",
    [
        ["--kafka-topic", "no-such-topic-anywhere"],
        ["--kafka-topic", "{batch_topic}", "--start-offset", '{"0": 0}',
         "--end-offset", '{"0": 999999}'],
    ],
)
def test_a_failing_batch_ends_failed_with_the_cause(seeded: WorkerProcess,
                                                    source: list[str]) -> None:
    args = [a.replace("{batch_topic}", seeded.settings.batch_topic) for a in source]
    status, record = run(seeded, "--analysis", "revenue_by_category", *args)
    assert status == 1
    assert record["status"] == "failed"
    assert record["error"]["code"] == "SOURCE_ERROR"
    assert record["error"]["message"]
    ok, _ = seeded.cli_json("ping")
    assert ok == 0


def test_cancel_a_batch(seeded: WorkerProcess) -> None:
    status, out = seeded.cli_json("batch", "run", "--analysis", "full_report", "--from-date",
                                  "2020-01-01", "--to-date", str(date.today()),
                                  "--batch-id", "to-cancel")
    assert status == 0, out
    status, out = seeded.cli_json("batch", "cancel", "to-cancel")
    assert status == 0, out
    assert out["status"] == "cancelled"
    status, out = seeded.cli_json("batch", "status", "to-cancel")
    assert out["status"] == "cancelled"


def test_three_batches_run_while_the_stream_ingests(seeded: WorkerProcess) -> None:
    worker = seeded
    code, out = worker.cli_json("stream", "start", "--from", "latest")
    assert code == 0, out
    generator = worker.cli_popen("generate", "--rate", "200", "--count", "4000", "--seed", "5")
    try:
        ids = []
        for i in range(3):
            code, out = worker.cli_json("batch", "run", "--analysis", "full_report",
                                        "--from-date", "2020-01-01", "--to-date",
                                        str(date.today()), "--batch-id", f"concurrent-{i}")
            assert code == 0, out
            ids.append(out["batch_id"])
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            registry = {b: worker.cli_json("batch", "status", b)[1]["status"] for b in ids}
            if all(s in ("completed", "failed", "cancelled") for s in registry.values()):
                break
            time.sleep(3)
        assert set(registry.values()) == {"completed"}, registry
    finally:
        generator.wait(300)
    events = worker.events()
    running_at = {e.data["batch_id"]: e.occurred_at for e in events
                  if e.type is EventType.BATCH_RUNNING and e.data["batch_id"] in ids}
    done_at = {e.data["batch_id"]: e.occurred_at for e in events
               if e.type is EventType.BATCH_COMPLETED and e.data["batch_id"] in ids}
    # The batches overlapped each other, and the stream kept committing meanwhile.
    assert max(running_at.values()) < min(done_at.values())
    progress = [e for e in events if e.type is EventType.STREAM_PROGRESS
                and min(running_at.values()) <= e.occurred_at <= max(done_at.values())
                and e.data["rows_in"] > 0]
    assert progress, "the stream made no progress while the batches ran"
