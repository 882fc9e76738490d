"""What the published schemas say about the `fraud-alerts` topic: the FraudAlert message's
intent, its header and its example (README.md#fraud-detection). Kept apart from
`contracts.schema_export`, which places them in the files it writes.
"""

from __future__ import annotations

from typing import Any

from contracts.fraud import FraudAlert, RiskLevel, Rule, alert_id

ALERT_SUMMARY = (
    "A transaction's fraud rule score reached HIGH or CRITICAL, or late data raised its "
    "level (then `previous_level` is set). Deduplicate on `alert_id`: after a worker crash "
    "the same alert may arrive twice."
)
ALERT_KEY = "`transaction_id` of the scored transaction."
ALERT_HEADERS: dict[str, Any] = {
    "type": "object",
    "description": "Kafka headers: `alert_id`, the same as the payload's.",
    "properties": {"alert_id": {"type": "string"}},
}

_TRANSACTION_ID = "a3f8e2b1-7c44-4d12-9e56-1a2b3c4d5e6f"


def fraud_alert_examples() -> list[tuple[str, str, dict[str, Any]]]:
    """(name, summary, message), each built through the model."""
    first = FraudAlert(
        alert_id=alert_id(_TRANSACTION_ID, RiskLevel.HIGH),
        transaction_id=_TRANSACTION_ID,
        customer_id="CUST-00042871",
        score=65,
        risk_level=RiskLevel.HIGH,
        reasons=[Rule.HIGH_AMOUNT, Rule.RISKY_PAYMENT, Rule.RISKY_REGION],
        velocity_count=2,
        total_amount=6240.5,
        event_timestamp="2025-01-15T14:32:07.123Z",
        model_score=0.81,
        model_version="20250115T020000Z",
        alerted_at="2025-01-15T14:32:12.480Z",
    )
    raised = FraudAlert.model_validate({**first.model_dump(),
        "alert_id": alert_id(_TRANSACTION_ID, RiskLevel.CRITICAL),
        "score": 90,
        "risk_level": RiskLevel.CRITICAL,
        "previous_level": RiskLevel.HIGH,
        "reasons": [*first.reasons, Rule.VELOCITY],
        "velocity_count": 6,
        "alerted_at": "2025-01-15T14:41:03.017Z",
    })
    return [
        ("high_alert", "A gift-card purchase over 5000 in a risky region",
         first.model_dump(mode="json")),
        ("raised_by_late_data", "Late transactions of the same customer raised it to "
         "CRITICAL (velocity)", raised.model_dump(mode="json")),
    ]
