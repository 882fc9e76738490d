"""`pipeline fraud alerts`: the fraud alerts the worker published (docs/fraud-detection.md).

Reads the `fraud-alerts` topic from its beginning with a throw-away consumer (it assigns
partitions and commits nothing), up to the end offsets seen at start, or on until Ctrl-C
with `--follow`. An alert may be on the topic twice (a worker crash between sending and
committing re-sends it): the output shows each `alert_id` once.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import typer

from contracts.errors import ContractError
from contracts.fraud import ALERT_LEVELS, LEVEL_RANK, FraudAlert, RiskLevel
from contracts.settings import Settings

fraud_app = typer.Typer(help="Fraud detection: the alerts of the rule scores.",
                        no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the `pipeline` app."""
    app.add_typer(fraud_app, name="fraud")


# `producers.cli` registers this module at its end: with the app and `register` defined
# above, importing this module first works too.
from producers.cli import JsonOpt, _fail, _settings  # noqa: E402
from producers.output import (  # noqa: E402
    EXIT_USAGE,
    print_json,
    print_table,
    stderr,
    stdout,
)

ALERT_COLUMNS = ["time", "transaction", "customer", "level", "previous", "score", "reasons",
                 "amount"]


def read_alerts(settings: Settings, *, follow: bool = False,
                should_stop: Callable[[], bool] = lambda: False) -> Iterator[FraudAlert]:
    """Every alert on the fraud-alerts topic, from the beginning to the end offsets seen
    at call time (forever with `follow`), each `alert_id` once. Records that are not
    FraudAlerts are skipped."""
    from confluent_kafka import KafkaError, KafkaException, TopicPartition

    from contracts.kafka_clients import end_offsets, make_consumer

    topic = settings.fraud_alerts_topic
    consumer = make_consumer(settings)
    seen: set[str] = set()
    try:
        ends = end_offsets(consumer, topic)
        if not ends and not follow:
            return
        while not ends:  # --follow before the worker created the topic
            if should_stop():
                return
            time.sleep(1.0)
            ends = end_offsets(consumer, topic)
        consumer.assign([TopicPartition(topic, p, 0) for p in ends])
        remaining = {p for p, end in ends.items() if end > 0}
        while follow or remaining:
            if should_stop():
                return
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            if msg.error():
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    remaining.discard(msg.partition())
                    continue
                raise KafkaException(msg.error())
            if msg.offset() >= ends.get(msg.partition(), 0) - 1:
                remaining.discard(msg.partition())
            alert = _decode(msg.value())
            if alert is not None and alert.alert_id not in seen:
                seen.add(alert.alert_id)
                yield alert
    finally:
        consumer.close()


def _decode(raw: bytes | None) -> FraudAlert | None:
    if raw is None:
        return None
    try:
        return FraudAlert.model_validate_json(raw)
    except (ValueError, ContractError):  # pydantic's ValidationError is a ValueError
        return None


def parse_level(level: str | None) -> RiskLevel | None:
    """`--level`: HIGH or CRITICAL (any case), None for every alert; ValueError else."""
    if level is None:
        return None
    try:
        parsed = RiskLevel(level.strip().upper())
    except ValueError:
        parsed = None
    if parsed not in ALERT_LEVELS:
        allowed = " or ".join(sorted(lv.value for lv in ALERT_LEVELS))
        raise ValueError(f"--level must be {allowed} (alerts are only sent at those "
                         f"levels), not {level!r}")
    return parsed


def _row(alert: FraudAlert) -> dict[str, Any]:
    return {
        "time": alert.event_timestamp,
        "transaction": alert.transaction_id,
        "customer": alert.customer_id,
        "level": alert.risk_level.value,
        "previous": alert.previous_level.value if alert.previous_level else None,
        "score": alert.score,
        "reasons": ", ".join(r.value for r in alert.reasons),
        "amount": alert.total_amount,
    }


def _line(alert: FraudAlert) -> str:
    """One alert on one line, for --follow."""
    row = _row(alert)
    previous = f" (was {row['previous']})" if row["previous"] else ""
    return (f"{alert.event_timestamp.isoformat(timespec='seconds')} {row['level']}{previous} "
            f"score={alert.score} txn={alert.transaction_id} customer={alert.customer_id} "
            f"amount={alert.total_amount:,.2f} reasons={row['reasons']}")


@fraud_app.command("alerts")
def fraud_alerts(
    follow: bool = typer.Option(False, "--follow", help="Keep printing new alerts."),
    level: str | None = typer.Option(None, "--level",
                                     help="Only alerts at this level or above: HIGH or "
                                          "CRITICAL."),
    as_json: bool = JsonOpt,
) -> None:
    """Fraud alerts from the fraud-alerts topic, each alert_id once (JSON lines with
    --json --follow)."""
    from contracts.kafka_clients import KafkaUnavailable, check_reachable

    try:
        floor = parse_level(level)
    except ValueError as exc:
        raise _fail(str(exc), as_json, EXIT_USAGE) from None
    settings = _settings()

    def wanted(alert: FraudAlert) -> bool:
        return floor is None or LEVEL_RANK[alert.risk_level] >= LEVEL_RANK[floor]

    try:
        check_reachable(settings)
        alerts = (a for a in read_alerts(settings, follow=follow) if wanted(a))
        if follow:
            for alert in alerts:
                if as_json:
                    sys.stdout.write(alert.model_dump_json() + "\n")
                    sys.stdout.flush()
                else:
                    stdout.print(_line(alert), highlight=False, soft_wrap=True)
            return
        found = sorted(alerts, key=lambda a: (a.alerted_at, a.alert_id))
    except KafkaUnavailable as exc:
        raise _fail(str(exc), as_json) from None
    except KeyboardInterrupt:
        return
    if as_json:
        print_json({"ok": True, "topic": settings.fraud_alerts_topic,
                    "alerts": [a.model_dump(mode="json") for a in found]})
    elif found:
        print_table([_row(a) for a in found], ALERT_COLUMNS,
                    title=f"{len(found)} fraud alert(s) on {settings.fraud_alerts_topic}")
    else:
        stderr.print(f"no fraud alerts on {settings.fraud_alerts_topic}")
