"""Small validators for the ``workload:`` mapping of a scenario.

Every helper takes the dotted field path (``where``, e.g. ``"workload.arrival"``) so that
errors name the offending field: ``<source>: workload.arrival.process: unknown 'x' (known: ...)``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from prfaas_gym.workload.errors import WorkloadError


class Fields:
    """A checked view of one mapping of the spec.

    Reading a key records it as used; :meth:`done` then refuses any key that was never read,
    so a typo (``rat_rps``) is an error instead of being silently ignored.
    """

    def __init__(self, mapping: Any, where: str, source: str) -> None:
        if mapping is None:
            mapping = {}
        if not isinstance(mapping, Mapping):
            raise WorkloadError(f"{source}: {where}: expected a mapping, got {_show(mapping)}")
        self.mapping = mapping
        self.where = where
        self.source = source
        self._known: list[str] = []

    # -- errors -----------------------------------------------------------------------------
    def error(self, key: str | None, message: str) -> WorkloadError:
        """A `WorkloadError` naming ``source: where.key``."""
        field = self.where if key is None else f"{self.where}.{key}"
        return WorkloadError(f"{self.source}: {field}: {message}")

    def sub(self, key: str, *, required: bool = False) -> "Fields":
        """A nested mapping as its own `Fields` (an empty one when absent and not required)."""
        if required and self.mapping.get(key) is None:
            raise self.error(key, "required")
        value = self.raw(key)
        return Fields(value, f"{self.where}.{key}", self.source)

    # -- access -----------------------------------------------------------------------------
    def has(self, key: str) -> bool:
        """Whether ``key`` is present with a non-null value (records it as known)."""
        self._known.append(key)
        return self.mapping.get(key) is not None

    def raw(self, key: str, default: Any = None) -> Any:
        """The raw value of ``key`` (``default`` when absent or null)."""
        self._known.append(key)
        value = self.mapping.get(key)
        return default if value is None else value

    def choice(self, key: str, known: Iterable[str], default: str | None = None) -> str:
        """A string that must be one of ``known``."""
        known = list(known)
        value = self.raw(key, default)
        if value is None:
            raise self.error(key, f"required (known: {', '.join(known)})")
        if not isinstance(value, str) or value not in known:
            raise self.error(key, f"unknown {_show(value)} (known: {', '.join(known)})")
        return value

    def number(
        self,
        key: str,
        default: float | None = None,
        *,
        min: float | None = None,
        max: float | None = None,
        strict_min: bool = False,
        required: bool = False,
    ) -> float | None:
        """A finite real number within bounds (``None`` when absent and no default)."""
        value = self.raw(key)
        if value is None:
            if required:
                raise self.error(key, "required")
            return default
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise self.error(key, f"expected a number, got {_show(value)}")
        value = float(value)
        if min is not None and (value <= min if strict_min else value < min):
            raise self.error(key, f"must be {'>' if strict_min else '>='} {_num(min)}, got {_num(value)}")
        if max is not None and value > max:
            raise self.error(key, f"must be <= {_num(max)}, got {_num(value)}")
        return value

    def integer(
        self, key: str, default: int | None = None, *, min: int | None = None, required: bool = False
    ) -> int | None:
        """An integer (``2000`` or ``2000.0``) of at least ``min``."""
        value = self.raw(key)
        if value is None:
            if required:
                raise self.error(key, "required")
            return default
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                or value != int(value):
            raise self.error(key, f"expected an integer, got {_show(value)}")
        value = int(value)
        if min is not None and value < min:
            raise self.error(key, f"must be >= {min}, got {value}")
        return value

    def boolean(self, key: str, default: bool) -> bool:
        """A YAML boolean."""
        value = self.raw(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self.error(key, f"expected true or false, got {_show(value)}")
        return value

    def string(self, key: str, default: str | None = None, *, required: bool = False) -> str | None:
        """A non-empty string."""
        value = self.raw(key)
        if value is None:
            if required:
                raise self.error(key, "required")
            return default
        if not isinstance(value, str) or not value:
            raise self.error(key, f"expected a non-empty string, got {_show(value)}")
        return value

    def done(self) -> None:
        """Refuse keys that were never read (typos)."""
        known = sorted(set(self._known))
        for key in self.mapping:
            if key not in known:
                raise self.error(None, f"unknown key {_show(key)} (known: {', '.join(known)})")


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _num(value: float) -> str:
    return f"{value:g}"
