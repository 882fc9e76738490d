"""The workers' event MAC (contracts/event_signing.py): pure logic, no broker."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from contracts.event_signing import (
    MAC_HEADER,
    EventAuthenticator,
    EventKeyError,
    event_key_path,
    load_event_key,
    load_or_create_event_key,
)
from contracts.settings import Settings


def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data")


def test_the_key_is_made_once_private_and_reused(tmp_path: Path) -> None:
    s = settings(tmp_path)
    assert load_event_key(s) is None  # a client before any worker started
    first = load_or_create_event_key(s)
    path = event_key_path(s)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = load_or_create_event_key(s)
    client = load_event_key(s)
    assert client is not None
    headers = first.headers(b"batch/b1", b"{}")
    assert again.is_authentic(b"batch/b1", b"{}", headers)
    assert client.is_authentic(b"batch/b1", b"{}", headers)
    assert list(path.parent.glob(".*tmp")) == []
    assert path.read_text().strip() not in repr(first)


def test_a_configured_key_path_is_used(tmp_path: Path) -> None:
    s = Settings(data_dir=tmp_path / "data", event_key=tmp_path / "elsewhere" / "k")
    load_or_create_event_key(s)
    assert (tmp_path / "elsewhere" / "k").is_file()
    assert not (tmp_path / "data" / "security").exists()


@pytest.mark.parametrize("case", ["no headers", "other header", "empty", "wrong value",
                                  "wrong key", "other secret", "truncated"])
def test_anything_but_the_exact_record_is_refused(case: str) -> None:
    auth = EventAuthenticator(b"k" * 32)
    good = auth.mac(b"batch/b1", b'{"a":1}')
    key, value = b"batch/b1", b'{"a":1}'
    headers: list[tuple[str, bytes | None]] = {
        "no headers": [],
        "other header": [("x-other", good)],
        "empty": [(MAC_HEADER, None)],
        "wrong value": [(MAC_HEADER, auth.mac(b"batch/b1", b'{"a":2}'))],
        "wrong key": [(MAC_HEADER, auth.mac(b"batch/b2", value))],
        "other secret": [(MAC_HEADER, EventAuthenticator(b"x" * 32).mac(key, value))],
        "truncated": [(MAC_HEADER, good[:16])],
    }[case]
    assert not auth.is_authentic(key, value, headers)
    assert not auth.is_authentic(key, value, None)
    assert auth.is_authentic(key, value, [("x-other", b""), (MAC_HEADER, good)])


def test_a_damaged_key_file_is_a_clear_error(tmp_path: Path) -> None:
    s = settings(tmp_path)
    path = event_key_path(s)
    path.parent.mkdir(parents=True)
    path.write_text("not hex\n")
    with pytest.raises(EventKeyError, match="unreadable"):
        load_or_create_event_key(s)
    assert load_event_key(s) is None
    path.write_text("ab" * 16 + "\n")  # 16 bytes, not 32
    with pytest.raises(EventKeyError, match="32 bytes"):
        load_or_create_event_key(s)
