"""Errors as the server sends them: {code, message, data} with an HTTP status."""

from __future__ import annotations

from typing import Any, Optional


class FluidError(Exception):
    """A failed call. ``code`` is one of Fluid's stable codes (VALIDATION, NOT_FOUND, DENIED, ...)."""

    def __init__(self, code: str, message: str, status: int = 0, data: Optional[Any] = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status
        self.data = data
