"""The real stream (broker, worker process, Delta) files each hand-written edge case where the
published JSON Schema says: the valid ones in `stream/transactions`, the rest in
`stream/quarantine`, byte for byte."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest

from tests.contract_cases import EDGE_CASES, SAMPLE, schema_accepts
from tests.e2e.conftest import WorkerProcess
from tests.e2e.delta_reads import count, produce, table, wait_until
from worker.storage import StoragePaths

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

_SAMPLE_ID = SAMPLE["transaction_id"].encode()


def _cases() -> list[tuple[str, bytes | None, bool]]:
    """(key, value, valid) per edge case; each valid one gets its own transaction_id."""
    out = []
    for i, case in enumerate(EDGE_CASES):
        key = f"edge-{i:03d}"
        raw = case.raw.replace(_SAMPLE_ID, key.encode()) if case.raw is not None else None
        assert schema_accepts(raw) is case.valid, case.name  # still the schema's verdict
        out.append((key, raw, case.valid))
    return out


def test_each_edge_case_lands_where_the_schema_says(running_worker: WorkerProcess) -> None:
    worker = running_worker
    paths = StoragePaths(worker.settings)
    cases = _cases()
    produce(worker.settings, worker.settings.stream_topic, [(k, v) for k, v, _ in cases])
    code, out = worker.cli_json("stream", "start", "--from", "earliest")
    assert code == 0 and out["status"] == "running", out
    wait_until(lambda: count(paths.transactions) + count(paths.quarantine) >= len(cases), 300,
               f"{len(cases)} edge cases in Delta")

    names = {key: case.name for (key, _, _), case in zip(cases, EDGE_CASES, strict=True)}
    tx = table(paths.transactions)
    accepted = set() if tx is None else set(tx["transaction_id"])
    quarantine = table(paths.quarantine)
    assert quarantine is not None
    rejected = {bytes(k).decode() for k in quarantine["raw_key"]}
    want_valid = {key for key, _, valid in cases if valid}
    assert sorted(names[k] for k in accepted - want_valid) == [], "accepted, schema says no"
    assert sorted(names[k] for k in want_valid - accepted) == [], "rejected, schema says yes"
    assert rejected == {key for key, _, valid in cases if not valid}
    assert len(tx) == len(want_valid) and len(quarantine) == len(rejected)

    sent = {key: raw for key, raw, _ in cases}
    for row in quarantine.itertuples():
        key = bytes(row.raw_key).decode()
        raw = None if row.raw_value is None else bytes(row.raw_value)
        assert raw == sent[key] and row.reason, names[key]

    # Stored as the model reads them: integers from 5.0 and 1e2, UTC timestamps.
    stored = tx.set_index("transaction_id")
    key_of = {case.name: key for (key, _, _), case in zip(cases, EDGE_CASES, strict=True)}
    assert stored.loc[key_of["quantity 5.0"], "quantity"] == 5
    assert stored.loc[key_of["quantity 1e2"], "quantity"] == 100
    ts = pd.Timestamp(stored.loc[key_of["ts 9 digits +05:30"], "event_timestamp"])
    ts = ts.tz_localize(UTC) if ts.tzinfo is None else ts
    assert ts == pd.Timestamp(datetime(2025, 1, 15, 9, 2, 7, 123456, tzinfo=UTC))
