"""Shared fixtures for workload tests: tiny traces in tests/data/traces, real ones in ../shared/data."""

from __future__ import annotations

from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
FIXTURES = TESTS / "data" / "traces"
SHARED_DATA = TESTS.parent.parent / "shared" / "data"


@pytest.fixture
def fixtures() -> Path:
    """Directory of the tiny hand-made traces (use as data_dir)."""
    return FIXTURES


@pytest.fixture
def shared_data() -> Path:
    """The real public traces beside the checkout; skips when absent."""
    if not (SHARED_DATA / "mooncake").is_dir():
        pytest.skip(f"real traces not found at {SHARED_DATA}")
    return SHARED_DATA

