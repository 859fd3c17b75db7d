"""Errors raised by the profile loaders."""

from __future__ import annotations

from collections.abc import Iterable


class ProfileError(ValueError):
    """A profile file or field is invalid; the message names the file and the field."""


class UnknownProfileError(ValueError):
    """A profile name is not packaged; the message lists the known names.

    Format: ``unknown hardware 'x' (known: a, b, c)``.
    """

    def __init__(self, kind: str, name: str, known: Iterable[str]) -> None:
        self.kind = kind
        self.name = name
        self.known = tuple(sorted(known))
        super().__init__(f"unknown {kind} {name!r} (known: {', '.join(self.known)})")
