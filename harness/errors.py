"""Errors the CLI turns into exit code 2 with a one-paragraph message (no traceback)."""

from __future__ import annotations


class InputError(Exception):
    """Bad input from the user: a matrix file, a flag, an unknown run.

    The message names the file, the field path and what is allowed, so the user can fix
    it without reading code.
    """

    def __init__(self, message: str, *, file: str | None = None, field: str | None = None,
                 allowed: str | None = None):
        self.file = file
        self.field = field
        self.allowed = allowed
        parts = []
        if file:
            parts.append(f"{file}:")
        if field:
            parts.append(f"{field}:")
        parts.append(message)
        if allowed:
            parts.append(f"(allowed: {allowed})")
        super().__init__(" ".join(parts))
