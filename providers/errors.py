"""The one base error whose message is safe to show a member (shared by providers and the bot)."""

from __future__ import annotations


class SplitshotError(Exception):
    """An error whose ``str()`` is a plain sentence safe to show to a member or CLI user."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message
