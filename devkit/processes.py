"""Stopping child processes the way the worker expects: SIGTERM first (a graceful drain),
SIGKILL only when that takes longer than the grace period."""

from __future__ import annotations

import signal
import subprocess


def terminate(proc: subprocess.Popen[bytes] | None, grace: float) -> int | None:
    """SIGTERM, wait up to `grace` seconds, then SIGKILL; the exit code (None: never ran)."""
    if proc is None or proc.poll() is not None:
        return proc.returncode if proc is not None else None
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait(30)
