"""Fraud scores, alerts and gold tables through a real worker: every silver transaction
scored as the rules define (boundaries included), a late transaction raising a later one's
level (row updated, alerted again), alerts complete across kill -9, seeded history scored
too, a model trained by a batch and hot-loaded by the running stream, and the gold tables
equal to their definitions over all of silver."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from contracts.events import EventType
from contracts.tables import table_by_name
from producers.generator import TransactionGenerator
from tests.e2e.conftest import WorkerProcess, make_worker
from tests.e2e.delta_reads import consume_all, table, wait_until
from tests.e2e.fraud_reference import actual_scores, expected_scores
from tests.gold_reference import TABLES, assert_matches, expected, keyed
from worker.storage import StoragePaths

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

# A Friday: 22:59 vs 23:00 on it, 04:59 vs 05:00 on the Saturday after.
FRIDAY = datetime(2025, 6, 6, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


@pytest.fixture(scope="module")
def worker(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[WorkerProcess]:
    tmp = tmp_path_factory.mktemp("fraud")
    worker = make_worker(kafka_bootstrap, tmp)
    # The crafted history spans a day and a half of event time: all of it within the
    # horizon, so that every row re-scores what it affects.
    worker.env["PIPELINE_LATENESS_HORIZON_HOURS"] = "72"
    worker.start()
    code, started = worker.cli_json("stream", "start", "--from", "earliest")
    assert code == 0, started
    yield worker
    worker.discard()


def txn(gen: TransactionGenerator, tid: str, customer: str, at: datetime,
        **fields: Any) -> bytes:
    event = gen.event()
    quiet = {"payment_method": "credit_card", "region": "north", "is_fraudulent": False,
             "quantity": 1, "unit_price": 100.0, "discount_percent": 0.0,
             "total_amount": 100.0, "transaction_status": "completed"}
    event.update(quiet)
    event.update(transaction_id=tid, customer_id=customer,
                 event_timestamp=at.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z", **fields)
    if "total_amount" in fields:
        event["unit_price"] = fields["total_amount"]
    return orjson.dumps(event)


def produce(worker: WorkerProcess, values: list[bytes]) -> None:
    from contracts.kafka_clients import make_producer

    producer = make_producer(worker.settings)
    for value in values:
        producer.produce(worker.settings.stream_topic, value=value)
    assert producer.flush(60) == 0


def alerts(worker: WorkerProcess) -> list[dict[str, Any]]:
    return [orjson.loads(m.value()) for m in
            consume_all(worker.settings, worker.settings.fraud_alerts_topic)]


def scored(worker: WorkerProcess, ids: set[str]) -> bool:
    scores = table(StoragePaths(worker.settings).fraud_scores)
    return scores is not None and ids <= set(scores["transaction_id"])


def check_scores_match_the_definition(worker: WorkerProcess) -> dict[str, dict[str, Any]]:
    paths = StoragePaths(worker.settings)
    silver, scores = table(paths.silver), table(paths.fraud_scores)
    assert silver is not None and scores is not None
    assert scores["transaction_id"].is_unique
    expected = expected_scores(silver)
    assert actual_scores(scores) == expected
    return expected


def check_alerts_complete(worker: WorkerProcess, expected: dict[str, dict[str, Any]]) -> None:
    sent = {a["alert_id"] for a in alerts(worker)}
    for tid, row in expected.items():
        if row["risk_level"] in ("HIGH", "CRITICAL"):
            assert f"{tid}:{row['risk_level']}" in sent, tid


def test_rules_at_their_boundaries_and_a_late_row_raising_a_later_level(
        worker: WorkerProcess) -> None:
    gen = TransactionGenerator(seed=21)
    noon = FRIDAY + timedelta(hours=12)
    cases = [
        txn(gen, "amount-5000.00", "C-A1", noon, total_amount=5000.00),
        txn(gen, "amount-5000.01", "C-A2", noon, total_amount=5000.01),
        txn(gen, "at-22:59", "C-N1", FRIDAY + timedelta(hours=22, minutes=59)),
        txn(gen, "at-23:00", "C-N2", FRIDAY + timedelta(hours=23)),
        txn(gen, "at-04:59", "C-N3", FRIDAY + timedelta(days=1, hours=4, minutes=59)),
        txn(gen, "at-05:00", "C-N4", FRIDAY + timedelta(days=1, hours=5)),
        txn(gen, "gift", "C-P1", noon, payment_method="gift_card"),
        txn(gen, "northeast", "C-R1", noon, region="northeast"),
        txn(gen, "known", "C-K1", noon, is_fraudulent=True),
    ]
    # Five and six transactions in 30 minutes (the sixth at exactly +29:59.999).
    five = [txn(gen, f"v5-{i}", "C-V5", noon + i * 7 * MINUTE) for i in range(5)]
    six = [txn(gen, f"v6-{i}", "C-V6", noon + i * 5 * MINUTE) for i in range(5)]
    six.append(txn(gen, "v6-5", "C-V6", noon + 30 * MINUTE - timedelta(milliseconds=1)))
    # Six at noon + 0, 6, ..., 30 min: exactly 30 minutes before the last one is outside
    # its window (t - 30 min, t], so it counts five.
    edge = [txn(gen, f"edge-{i}", "C-E", noon + i * 6 * MINUTE) for i in range(6)]
    # A risky transaction (gift card, northeast, > 5000: 65, HIGH) after four quiet ones.
    risky = dict(payment_method="gift_card", region="northeast", total_amount=6000.0)
    burst = [txn(gen, f"b-{i}", "C-B", noon + i * 5 * MINUTE) for i in range(1, 5)]
    burst.append(txn(gen, "b-risky", "C-B", noon + 25 * MINUTE, **risky))
    first = cases + five + six + edge + burst
    produce(worker, first)
    wait_until(lambda: scored(worker, {"b-risky", "v6-5", "at-05:00"}), 240,
               "the first transactions scored")
    wait_until(lambda: any(a["transaction_id"] == "b-risky" for a in alerts(worker)), 120,
               "the alert of b-risky")
    expected = check_scores_match_the_definition(worker)
    assert expected["amount-5000.00"]["reasons"] == []
    assert expected["amount-5000.01"]["reasons"] == ["high_amount"]
    assert expected["at-22:59"]["reasons"] == []
    assert expected["at-23:00"]["reasons"] == ["night"]
    assert expected["at-04:59"]["reasons"] == ["night", "weekend"]
    assert expected["at-05:00"]["reasons"] == ["weekend"]
    assert "velocity" not in expected["v5-4"]["reasons"]
    assert expected["v6-5"]["reasons"] == ["velocity"]
    assert expected["edge-5"]["velocity_count"] == 5
    assert expected["b-risky"]["risk_level"] == "HIGH"

    # A late transaction of the same customer, 24 minutes before b-risky: now six in its
    # window, velocity fires, the level rises to CRITICAL: row updated, alerted again.
    produce(worker, [txn(gen, "b-late", "C-B", noon + MINUTE)])

    def raised() -> bool:
        scores = table(StoragePaths(worker.settings).fraud_scores)
        row = scores[scores["transaction_id"] == "b-risky"] if scores is not None else None
        return row is not None and len(row) == 1 and row.iloc[0]["risk_level"] == "CRITICAL"

    wait_until(raised, 240, "b-risky rescored after the late transaction")
    wait_until(lambda: any(a["alert_id"] == "b-risky:CRITICAL" for a in alerts(worker)), 120,
               "the second alert of b-risky")
    expected = check_scores_match_the_definition(worker)
    check_alerts_complete(worker, expected)
    sent = [a for a in alerts(worker) if a["transaction_id"] == "b-risky"]
    by_level = {a["risk_level"]: a for a in sent}
    assert by_level["HIGH"]["previous_level"] is None
    assert by_level["CRITICAL"]["previous_level"] == "HIGH"
    assert by_level["CRITICAL"]["score"] == 90
    assert "velocity" in by_level["CRITICAL"]["reasons"]


def test_alerts_and_scores_complete_across_kill_9(worker: WorkerProcess) -> None:
    gen = TransactionGenerator(seed=22)
    base = FRIDAY + timedelta(hours=14)
    risky = dict(payment_method="gift_card", region="northeast", total_amount=7000.0)
    values = [txn(gen, f"k-{i}", f"C-K{i % 17}", base + i * 13 * timedelta(seconds=1),
                  **(risky if i % 3 == 0 else {})) for i in range(240)]
    produce(worker, values[:120])
    wait_until(lambda: scored(worker, {"k-0"}), 240, "the first of them scored")
    produce(worker, values[120:])
    worker.kill9()
    worker.start()
    ids = {f"k-{i}" for i in range(240)}
    wait_until(lambda: scored(worker, ids), 300, "every transaction scored after the restart")
    expected = check_scores_match_the_definition(worker)
    wait_until(lambda: all(
        f"{tid}:{row['risk_level']}" in {a["alert_id"] for a in alerts(worker)}
        for tid, row in expected.items() if row["risk_level"] in ("HIGH", "CRITICAL")),
        120, "every alert")
    check_alerts_complete(worker, expected)


def silver_rows(worker: WorkerProcess) -> list[dict[str, Any]]:
    from deltalake import DeltaTable

    return DeltaTable(str(StoragePaths(worker.settings).silver)).to_pyarrow_table().to_pylist()


def gold_mismatch(worker: WorkerProcess) -> str | None:
    """None when every gold table equals its definition over silver (and the fraud
    scores), else what differs first."""
    from deltalake import DeltaTable

    rows = silver_rows(worker)
    scores = DeltaTable(str(StoragePaths(worker.settings).fraud_scores)).to_pyarrow_table(
        columns=["transaction_id", "risk_level", "reasons"]).to_pylist()
    for name in TABLES:
        spec = table_by_name(name)
        assert spec is not None
        try:
            stored = DeltaTable(str(spec.path(worker.settings.delta_dir))).to_pyarrow_table()
        except Exception:
            return f"{name} not created yet"
        try:
            assert_matches(keyed(name, stored.to_pylist()), expected(name, rows, scores))
        except AssertionError as exc:
            return f"{name}: {str(exc)[:300]}"
    return None


def test_seeded_history_a_hot_loaded_model_and_the_gold_tables(worker: WorkerProcess
                                                               ) -> None:
    # A week of history straight into silver, behind the running stream's back.
    seeded = worker.cli("seed", "--records", "3000", "--days", "7", "--seed", "23", "--json")
    assert seeded.returncode == 0, seeded.stderr
    seeded_ids = {r["transaction_id"] for r in silver_rows(worker) if r["source_topic"] is None}
    assert len(seeded_ids) == 3000
    wait_until(lambda: scored(worker, seeded_ids), 300, "the seeded history scored")
    expected_rows = check_scores_match_the_definition(worker)
    check_alerts_complete(worker, expected_rows)

    # The batch trains on that week; the running stream loads the model without a restart
    # and scores every new transaction with it.
    since = worker.event_count()
    code, batch = worker.cli_json("batch", "run", "--analysis", "train_fraud_model",
                                  "--batch-id", "train-1", "--wait", "--timeout", "600")
    assert code == 0, batch
    version = batch["model"]["version"]
    assert batch["model"]["metrics"]["area_under_roc"] > 0.5
    loaded = worker.wait_for(lambda e: e.type is EventType.MODEL_LOADED
                             and e.data.get("version") == version, 120, after=since)
    assert loaded is not None, worker.log_tail()
    gen = TransactionGenerator(seed=24)
    fresh = [txn(gen, f"m-{i}", f"C-M{i}", datetime.now(UTC) - i * MINUTE) for i in range(3)]
    produce(worker, fresh)

    def served() -> bool:
        scores = table(StoragePaths(worker.settings).fraud_scores)
        if scores is None:
            return False
        rows = scores[scores["transaction_id"].str.startswith("m-")]
        return (len(rows) == 3 and set(rows["model_version"]) == {version}
                and rows["model_score"].between(0, 1).all())

    wait_until(served, 180, "new transactions scored by the hot-loaded model")

    # Every gold table equals its definition over all of silver: the crafted rows, the
    # late one, the rows around the kill, the seeded week and the fresh ones.
    wait_until(lambda: gold_mismatch(worker) is None, 240, "the gold tables caught up")
    assert gold_mismatch(worker) is None
