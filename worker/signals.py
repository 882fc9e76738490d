"""Signal handling: the first SIGTERM/SIGINT asks for a graceful stop, the second forces exit."""

from __future__ import annotations

import logging
import os
import signal
import threading
from types import FrameType

log = logging.getLogger(__name__)


class StopFlag:
    """Set once a stop is requested; handlers only flip it (work happens in the loop)."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.reason = ""
        self.drain_timeout: float | None = None

    def set(self, reason: str, drain_timeout: float | None = None) -> None:
        if not self._event.is_set():
            self.reason = reason
            self.drain_timeout = drain_timeout
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    def wait(self, timeout: float) -> bool:
        return self._event.wait(timeout)


def install_signal_handlers(flag: StopFlag) -> None:
    def handle(signum: int, _frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if flag.is_set():
            log.warning("second %s: forcing exit", name)
            os._exit(1)
        log.info("%s received: stopping gracefully (send again to force)", name)
        flag.set(f"signal {name}")

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
