"""Helpers: import the scripts in ``agents/`` (not a package) by path."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

AGENTS = Path(__file__).resolve().parents[2] / "agents"

pytest.importorskip("stable_baselines3")
pytest.importorskip("sb3_contrib")


def load_script(name: str) -> ModuleType:
    """The module ``agents/<name>.py``."""
    spec = importlib.util.spec_from_file_location(f"agents_{name}", AGENTS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod
