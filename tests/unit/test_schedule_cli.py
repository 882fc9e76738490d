"""`pipeline schedule add` parses durations and checks its options before sending."""

from __future__ import annotations

import orjson
import pytest
from typer.testing import CliRunner

from producers.cli import app
from producers.cli_schedule import parse_duration


@pytest.mark.parametrize(("text", "seconds"), [
    ("90", 90), ("90s", 90), ("30m", 1800), ("1h", 3600), ("1h30m", 5400), ("1d", 86_400),
    ("86400s", 86_400)])
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "1x", "h", "1h 30m", "-5s", "1.5h"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


@pytest.mark.parametrize(("args", "message"), [
    (["--every", "1h", "--cron", "* * * * *"], "exactly one of --every and --cron"),
    ([], "exactly one of --every and --cron"),
    (["--every", "soon"], "--every: 'soon' is not a duration"),
])
def test_usage_errors_exit_2_before_sending(args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, [
        "schedule", "add", "--id", "s", "--analysis", "revenue_by_category",
        "--from-date", "2025-01-01", "--to-date", "2025-01-31", *args, "--json"])
    assert result.exit_code == 2
    assert message in orjson.loads(result.stdout)["error"]["message"]
