"""Typed errors raised by the core; the CLI and the window turn them into messages."""

from __future__ import annotations


class ExplorerError(Exception):
    """Base of every error the core raises on purpose."""


class SourceError(ExplorerError):
    """The source cannot be read as a container image; carries the file and the reason."""

    def __init__(self, source: str, reason: str, hint: str = "") -> None:
        self.source = source
        self.reason = reason
        self.hint = hint
        text = f"{source}: {reason}"
        if hint:
            text += f" ({hint})"
        super().__init__(text)

    def __reduce__(self) -> tuple:
        # rebuilt from its three parts when it crosses from a worker process
        return (SourceError, (self.source, self.reason, self.hint))


class SelectionError(ExplorerError):
    """The requested image or platform is not in the source."""


class Cancelled(ExplorerError):
    """The caller asked the work to stop."""
