"""The medallion through a real worker: bronze keeps every record byte for byte, silver each
transaction once (repeats within and across micro-batches and partitions, and across a
kill -9), backfills that add nothing over ingested data and fill a gap exactly, and the
tables listed by logical name."""

from __future__ import annotations

import time

import orjson
import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from contracts.events import EventType
from producers.generator import TransactionGenerator
from tests.e2e.conftest import WorkerProcess
from tests.e2e.delta_reads import count, produce, table, wait_until
from worker.storage import StoragePaths

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]


def records(gen: TransactionGenerator, n: int, prefix: str) -> list[dict]:
    out = []
    for i in range(n):
        event = gen.event()
        event["transaction_id"] = f"{prefix}-{i}"
        out.append(event)
    return out


def produce_to(worker: WorkerProcess, topic: str, values: list[bytes],
               partition: int | None = None) -> None:
    from contracts.kafka_clients import make_producer

    producer = make_producer(worker.settings)
    for value in values:
        if partition is None:
            producer.produce(topic, value=value)
        else:
            producer.produce(topic, value=value, partition=partition)
    assert producer.flush(60) == 0


def progress_total(worker: WorkerProcess, field: str, after: int = 0) -> int:
    return sum(int(e.data.get(field, 0)) for e in worker.events()[after:]
               if e.type is EventType.STREAM_PROGRESS)


def test_silver_keeps_each_transaction_once_and_bronze_every_record(
        running_worker: WorkerProcess) -> None:
    worker = running_worker
    paths = StoragePaths(worker.settings)
    topic = worker.settings.stream_topic
    mark = worker.event_count()
    code, started = worker.cli_json("stream", "start", "--from", "earliest")
    assert code == 0, started
    gen = TransactionGenerator(seed=11)
    events = records(gen, 30, "dup")
    first = [orjson.dumps(e) for e in events]
    # Micro-batch 1: every record, plus ten repeated on another partition in the same go.
    produce_to(worker, topic, first[:20], partition=0)
    produce_to(worker, topic, first[:10], partition=1)
    wait_until(lambda: count(paths.bronze) == 30, 240, "the first records in bronze")
    # Later micro-batches: the rest, then repeats of old ones on a third partition.
    produce_to(worker, topic, first[20:], partition=2)
    wait_until(lambda: count(paths.bronze) == 40, 240, "the rest in bronze")
    produce_to(worker, topic, first[5:25], partition=2)
    wait_until(lambda: count(paths.bronze) == 60, 240, "the repeats in bronze")
    wait_until(lambda: progress_total(worker, "rows_bronze", mark) == 60, 120,
               "stream.progress of every record")

    silver = table(paths.silver)
    assert silver is not None
    assert sorted(silver["transaction_id"]) == sorted(e["transaction_id"] for e in events)
    bronze = table(paths.bronze)
    assert bronze is not None and len(bronze) == 60
    assert bronze.groupby(["topic", "partition", "offset"]).size().max() == 1
    sent = sorted([*first[:20], *first[:10], *first[20:], *first[5:25]])
    assert sorted(bytes(v) for v in bronze["value"]) == sent
    assert progress_total(worker, "duplicates", mark) == 30
    assert progress_total(worker, "rows_written", mark) == 30
    # The uniqueness expectation counted what the dedupe removed.
    uniqueness = [q for e in worker.events()[mark:] if e.type is EventType.STREAM_PROGRESS
                  for q in e.data["quality"] if q["expectation"] == "uniqueness"]
    assert sum(q["rows_failed"] for q in uniqueness) == 30

    code, listed = worker.cli_json("tables")
    assert code == 0
    by_name = {t["name"]: t for t in listed["tables"]}
    assert {"bronze.transactions", "silver.transactions", "quarantine.transactions",
            "quality.metrics", "gold.dashboard"} <= set(by_name)
    assert by_name["bronze.transactions"]["rows"] == 60
    assert by_name["silver.transactions"]["rows"] == 30
    assert by_name["silver.transactions"]["layer"] == "silver"


def test_backfill_adds_nothing_over_ingested_data_and_fills_a_gap(
        running_worker: WorkerProcess) -> None:
    worker = running_worker
    paths = StoragePaths(worker.settings)
    topic = worker.settings.stream_topic
    before = {name: count(getattr(paths, name)) for name in ("bronze", "silver", "quarantine")}

    # Over everything the stream already ingested: nothing new, and the counts say so.
    code, done = worker.cli_json("backfill", "--topic", topic, "--backfill-id", "bf-again",
                                 "--wait", timeout=600)
    assert code == 0, done
    record = done
    assert record["status"] == "completed", record
    assert (record["bronze_new"], record["silver_new"], record["quarantined"]) == (0, 0, 0)
    assert record["records_read"] == before["bronze"]
    after = {name: count(getattr(paths, name)) for name in ("bronze", "silver", "quarantine")}
    assert after == before

    # A gap: records on another topic that no stream read, some repeating silver's ids.
    other = f"{topic}-gap"
    admin = AdminClient(worker.settings.kafka_client_config())  # kept alive for the wait
    admin.create_topics([NewTopic(other, num_partitions=2, replication_factor=1)])[other] \
        .result(30)
    gen = TransactionGenerator(seed=12)
    fresh = records(gen, 12, "gap")
    silver_ids = list(table(paths.silver)["transaction_id"])[:3]
    repeats = [dict(e, transaction_id=tid) for e, tid in zip(records(gen, 3, "x"), silver_ids,
                                                              strict=True)]
    values = [orjson.dumps(e) for e in [*fresh, *repeats]] + [b"not json at all"]
    produce_to(worker, other, values)
    code, done = worker.cli_json("backfill", "--topic", other, "--start-offset", "earliest",
                                 "--end-offset", "latest", "--backfill-id", "bf-gap", "--wait",
                                 timeout=600)
    assert code == 0, done
    record = done
    assert record["status"] == "completed", record
    assert (record["records_read"], record["bronze_new"], record["silver_new"],
            record["duplicates"], record["quarantined"]) == (16, 16, 12, 3, 1)
    bronze = table(paths.bronze)
    assert bronze is not None
    assert int((bronze["topic"] == other).sum()) == 16
    silver = table(paths.silver)
    assert silver is not None and silver["transaction_id"].is_unique
    assert {e["transaction_id"] for e in fresh} <= set(silver["transaction_id"])
    assert len(silver) == before["silver"] + 12

    # The same backfill id again is refused; a second backfill of the range adds nothing.
    code, refused = worker.cli_json("backfill", "--topic", other, "--backfill-id", "bf-gap")
    assert code == 1 and refused["error"]["code"] == "BACKFILL_ALREADY_EXISTS", refused
    code, done = worker.cli_json("backfill", "--topic", other, "--backfill-id", "bf-gap-2",
                                 "--wait", timeout=600)
    record = done
    assert (record["bronze_new"], record["silver_new"], record["quarantined"]) == (0, 0, 0)


def test_a_kill_9_with_repeated_ids_keeps_every_table_exact(
        new_worker: object) -> None:
    worker: WorkerProcess = new_worker()  # type: ignore[operator]
    paths = StoragePaths(worker.settings)
    topic = worker.settings.stream_topic
    worker.start()
    code, _ = worker.cli_json("stream", "start", "--from", "earliest")
    assert code == 0
    gen = TransactionGenerator(seed=13)
    events = records(gen, 600, "k9")
    values = [orjson.dumps(e) for e in events]
    repeated = values[::3]  # 200 repeats
    produce(worker.settings, topic, [(None, v) for v in values[:300]])
    wait_until(lambda: count(paths.bronze) > 0, 240, "the stream to start writing")
    produce(worker.settings, topic,
            [(None, v) for v in [*values[300:], *repeated, b"{broken"]])
    time.sleep(1.5)
    worker.kill9()
    worker.start()
    wait_until(lambda: count(paths.bronze) == 801, 300, "every record in bronze, once")
    wait_until(lambda: count(paths.silver) == 600, 120, "every transaction in silver")
    wait_until(lambda: count(paths.quarantine) == 1, 120, "the broken record in quarantine")
    bronze = table(paths.bronze)
    assert bronze is not None
    assert bronze.groupby(["partition", "offset"]).size().max() == 1
    silver = table(paths.silver)
    assert silver is not None and silver["transaction_id"].is_unique
    metrics = table(paths.quality_metrics)
    assert metrics is not None
    assert metrics.groupby(["micro_batch_id", "expectation", "run"]).size().max() == 1


EXPECTATIONS = """
expectations:
  - {name: completeness, layer: silver, check: required_fields, action: drop}
  - {name: validity, layer: silver, check: contract, action: drop}
  - name: amount_consistency
    layer: silver
    predicate: "abs(round(total_amount - quantity * unit_price
                * (1 - coalesce(discount_percent, 0) / 100), 6)) <= 0.01"
    action: warn
    window: 2
  - {name: no_gift_cards, layer: silver, predicate: "payment_method <> 'gift_card'",
     action: fail}
"""


def test_expectations_alert_recover_and_fail_the_stream(new_worker: object,
                                                       tmp_path: object) -> None:
    from pathlib import Path

    worker: WorkerProcess = new_worker()  # type: ignore[operator]
    file = Path(str(tmp_path)) / "expectations.yaml"
    file.write_text(EXPECTATIONS)
    worker.env["PIPELINE_EXPECTATIONS"] = str(file)
    paths = StoragePaths(worker.settings)
    topic = worker.settings.stream_topic
    worker.start()
    assert worker.cli_json("stream", "start", "--from", "earliest")[0] == 0
    gen = TransactionGenerator(seed=14)

    def batch(prefix: str, bad_totals: int = 0, gift: bool = False) -> list[bytes]:
        out = []
        for i, e in enumerate(records(gen, 10, prefix)):
            e["payment_method"] = "gift_card" if gift and i == 0 else "credit_card"
            if i < bad_totals:
                e["total_amount"] = round(e["total_amount"] + 5, 2)
            out.append(orjson.dumps(e))
        return out

    def send_and_wait(values: list[bytes], silver_rows: int) -> None:
        mark = worker.event_count()
        produce(worker.settings, topic, [(None, v) for v in values])
        wait_until(lambda: count(paths.silver) == silver_rows, 240, f"{silver_rows} in silver")
        wait_until(lambda: progress_total(worker, "rows_in", mark) >= len(values), 120,
                   "the micro-batch's progress")

    send_and_wait(batch("a", bad_totals=5), 10)
    alert = worker.wait_for(lambda e: e.type is EventType.QUALITY_ALERT, 60)
    assert alert is not None and alert.subject == "quality/silver/amount_consistency"
    assert (alert.data["rows_checked"], alert.data["rows_failed"]) == (10, 5)
    code, alerts = worker.cli_json("quality", "alerts")
    assert code == 0 and [a["expectation"] for a in alerts["alerts"]] == ["amount_consistency"]
    send_and_wait(batch("b"), 20)
    send_and_wait(batch("c"), 30)
    recovered = worker.wait_for(lambda e: e.type is EventType.QUALITY_RECOVERED, 60)
    assert recovered is not None and recovered.subject == alert.subject
    assert worker.cli_json("quality", "alerts")[1]["alerts"] == []
    code, status = worker.cli_json("quality", "status")
    assert code == 0
    assert {s["expectation"] for s in status["expectations"]} == {
        "completeness", "validity", "amount_consistency", "no_gift_cards"}

    produce(worker.settings, topic, [(None, v) for v in batch("d", gift=True)])
    failed = worker.wait_for(lambda e: e.type is EventType.STREAM_FAILED, 240)
    assert failed is not None, worker.log_tail()
    assert failed.data["error"]["code"] == "EXPECTATION_FAILED"
    assert "no_gift_cards" in failed.data["error"]["message"]
    assert count(paths.silver) == 30, "the failing micro-batch wrote nothing"
    assert count(paths.bronze) == 30


def test_a_bad_expectations_file_stops_the_worker_at_start(new_worker: object,
                                                          tmp_path: object) -> None:
    import subprocess
    from pathlib import Path

    from tests.e2e.conftest import PIPELINE

    worker: WorkerProcess = new_worker()  # type: ignore[operator]
    file = Path(str(tmp_path)) / "bad.yaml"
    file.write_text(EXPECTATIONS.replace("action: warn", "action: maybe"))
    result = subprocess.run([PIPELINE, "worker"], env={**worker.env,
                                                        "PIPELINE_EXPECTATIONS": str(file)},
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "amount_consistency" in result.stderr and "action" in result.stderr
