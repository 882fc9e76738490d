"""`pipeline fraud alerts` against a real broker: every alert once (duplicates dropped),
`--level` as a floor, `--json` as one object, and a clear error for a bad level."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from contracts.fraud import FraudAlert, RiskLevel, Rule, alert_id
from contracts.settings import Settings
from producers.cli import app


def _alert(txn: str, level: RiskLevel, previous: RiskLevel | None, minute: int) -> FraudAlert:
    at = datetime(2025, 1, 15, 14, tzinfo=UTC) + timedelta(minutes=minute)
    return FraudAlert(
        alert_id=alert_id(txn, level), transaction_id=txn, customer_id="CUST-1",
        score=90 if level is RiskLevel.CRITICAL else 65, risk_level=level,
        previous_level=previous, reasons=[Rule.HIGH_AMOUNT, Rule.RISKY_PAYMENT],
        velocity_count=1, total_amount=6000.0, event_timestamp=at, alerted_at=at)


@pytest.fixture
def alerts_env(kafka_bootstrap: str, tmp_path: Path) -> dict[str, str]:
    from confluent_kafka.admin import AdminClient, NewTopic

    from contracts.kafka_clients import make_producer

    topic = f"fraud-alerts-{uuid.uuid4().hex[:10]}"
    settings = Settings(kafka_bootstrap=kafka_bootstrap, fraud_alerts_topic=topic)
    admin = AdminClient(settings.kafka_client_config())
    for future in admin.create_topics([NewTopic(topic, num_partitions=2,
                                                replication_factor=-1)]).values():
        future.result()
    producer = make_producer(settings)
    sent = [_alert("t-1", RiskLevel.HIGH, None, 0),
            _alert("t-2", RiskLevel.CRITICAL, None, 1),
            _alert("t-1", RiskLevel.CRITICAL, RiskLevel.HIGH, 2)]
    for alert in [*sent, sent[1]]:  # t-2's alert twice, as after a crash
        producer.produce(topic, key=alert.transaction_id.encode(),
                         value=alert.model_dump_json().encode(),
                         headers=[("alert_id", alert.alert_id.encode())])
    assert producer.flush(30) == 0
    return {"PIPELINE_KAFKA_BOOTSTRAP": kafka_bootstrap, "PIPELINE_FRAUD_ALERTS_TOPIC": topic,
            "PIPELINE_DATA_DIR": str(tmp_path)}


def _json(env: dict[str, str], *args: str) -> dict:
    result = CliRunner().invoke(app, ["fraud", "alerts", "--json", *args], env=env)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_alerts_once_each_and_level_floor(alerts_env: dict[str, str]) -> None:
    out = _json(alerts_env)
    assert out["ok"] is True
    assert [a["alert_id"] for a in out["alerts"]] == ["t-1:HIGH", "t-2:CRITICAL",
                                                      "t-1:CRITICAL"]
    raised = out["alerts"][2]
    assert (raised["risk_level"], raised["previous_level"]) == ("CRITICAL", "HIGH")
    critical = _json(alerts_env, "--level", "critical")
    assert [a["alert_id"] for a in critical["alerts"]] == ["t-2:CRITICAL", "t-1:CRITICAL"]
    assert len(_json(alerts_env, "--level", "HIGH")["alerts"]) == 3

    table = CliRunner().invoke(app, ["fraud", "alerts"], env=alerts_env)
    assert table.exit_code == 0 and "3 fraud alert(s)" in table.stdout


def test_bad_level_is_a_usage_error(alerts_env: dict[str, str]) -> None:
    result = CliRunner().invoke(app, ["fraud", "alerts", "--json", "--level", "LOW"],
                                env=alerts_env)
    assert result.exit_code == 2
    error = json.loads(result.stdout)["error"]["message"]
    assert "HIGH" in error and "CRITICAL" in error
