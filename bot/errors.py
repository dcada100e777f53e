"""Errors the engine raises; the base (safe to show a member) lives with the providers."""

from __future__ import annotations

from providers.errors import SplitshotError

__all__ = ["BadInput", "SplitshotError"]


class BadInput(SplitshotError):
    """The request itself is wrong (unknown model, prompt too long, ...); nothing was spent."""
