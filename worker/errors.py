"""Refusals raised by command handlers; the loop turns them into `command.rejected`."""

from __future__ import annotations

from contracts.errors import ErrorCode


class CommandRefused(Exception):
    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
