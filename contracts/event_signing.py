"""Events a worker wrote, told apart from events anyone else wrote (README.md#trusted-events).

Every event a worker publishes carries a Kafka header `pipeline-mac`: an HMAC-SHA256 over
the record's key and value with the workers' event key, a 32-byte secret kept next to the
data (`<data_dir>/security/event.key`, mode 0600, made by the first worker that starts).
The registry rebuild, and every client that can read the key, ignores an event without a
valid MAC, so a record forged on `pipeline-events` cannot mark a batch completed or point
its results elsewhere, even on a broker without ACLs.

Why a MAC and not a signature per event: a restart folds the whole log (10^6 events
after a busy week). An Ed25519 verification costs ~190 us here, three minutes per
restart; an HMAC costs ~5 us. Only workers write events and they already share the data
directory, so a shared secret there costs nothing to distribute. Clients that cannot read
it (another machine) rely on the broker's ACLs, under which only the worker's principal
may write the topic (`pipeline broker start --secure`).
"""

from __future__ import annotations

import hmac
import logging
import os
import secrets
from collections.abc import Sequence
from pathlib import Path

from contracts.settings import Settings

log = logging.getLogger(__name__)

MAC_HEADER = "pipeline-mac"
_KEY_BYTES = 32
# Domain separation: the same secret can never authenticate anything but an event record.
_CONTEXT = b"pipeline-events/v1\x00"

Headers = Sequence[tuple[str, bytes | None]] | None


class EventKeyError(RuntimeError):
    """The event key file exists but cannot be used (unreadable, wrong size)."""


def event_key_path(settings: Settings) -> Path:
    return settings.event_key or settings.data_dir / "security" / "event.key"


class EventAuthenticator:
    """Computes and checks the `pipeline-mac` header of event records."""

    def __init__(self, key: bytes) -> None:
        if len(key) != _KEY_BYTES:
            raise EventKeyError(f"an event key is {_KEY_BYTES} bytes, got {len(key)}")
        self._key = key

    def __repr__(self) -> str:  # never the secret, whatever prints this object
        return "EventAuthenticator(<secret>)"

    def mac(self, key: bytes, value: bytes) -> bytes:
        # The record key is covered too, so a genuine value cannot be re-keyed.
        return hmac.digest(self._key, b"".join((_CONTEXT, key, b"\x00", value)), "sha256")

    def headers(self, key: bytes, value: bytes) -> list[tuple[str, bytes]]:
        return [(MAC_HEADER, self.mac(key, value))]

    def is_authentic(self, key: bytes | None, value: bytes, headers: Headers) -> bool:
        if not headers:
            return False
        for name, given in headers:
            if name == MAC_HEADER and given is not None:
                return hmac.compare_digest(given, self.mac(key or b"", value))
        return False


def _read_key(path: Path) -> bytes:
    try:
        text = path.read_text(encoding="ascii").strip()
        return bytes.fromhex(text)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise EventKeyError(f"event key {path} is unreadable ({type(exc).__name__}); "
                            "fix its permissions or restore it from a backup") from None


def load_or_create_event_key(settings: Settings) -> EventAuthenticator:
    """The workers' key, made on first start. Two workers starting at once on one data
    directory agree: the file is created exclusively, and the loser reads the winner's."""
    path = event_key_path(settings)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(secrets.token_hex(_KEY_BYTES) + "\n")
            out.flush()
            os.fsync(out.fileno())
        try:
            os.link(tmp, path)  # fails if another worker won the race: use its key
            log.info("created the event key %s (events are authenticated with it)", path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink(missing_ok=True)
    return EventAuthenticator(_read_key(path))


def load_event_key(settings: Settings) -> EventAuthenticator | None:
    """For clients: the key when this process can read it, else None (then only the
    broker's ACLs vouch for the events)."""
    path = event_key_path(settings)
    try:
        if not path.is_file():
            return None
        return EventAuthenticator(_read_key(path))
    except (OSError, EventKeyError):
        return None
