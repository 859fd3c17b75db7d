"""Suite-wide set-up: point trace lookups at ../shared/data when it sits beside the checkout."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

if "PRFAAS_DATA_DIR" not in os.environ and SHARED_DATA.is_dir():
    os.environ["PRFAAS_DATA_DIR"] = str(SHARED_DATA)

needs_data = pytest.mark.skipif(
    not os.environ.get("PRFAAS_DATA_DIR"),
    reason="needs the shared traces: ../shared/data beside the checkout or PRFAAS_DATA_DIR",
)
"""Mark for tests that replay real traces (Mooncake, Azure)."""
