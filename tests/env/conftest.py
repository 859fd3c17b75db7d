"""Fixtures for the env tests: small episodes and the Mooncake data directory."""

from __future__ import annotations

import os
from pathlib import Path

import gymnasium as gym
import pytest

import prfaas_gym  # noqa: F401  (registers the ids)
from prfaas_gym.env.registration import BASE_IDS, ENV_IDS


def find_data_dir() -> str | None:
    """The data directory holding mooncake/conversation_trace.jsonl, if any."""
    here = Path(__file__).resolve()
    for d in (os.environ.get("PRFAAS_DATA_DIR"), here.parents[3] / "shared" / "data", "/work/shared/data"):
        if d and (Path(d) / "mooncake" / "conversation_trace.jsonl").is_file():
            return str(d)
    return None


DATA_DIR = find_data_dir()
ALL_IDS = tuple(ENV_IDS)
VARIANT_SAMPLE = BASE_IDS + tuple(
    f"prfaas/{b}-{s}-{r}-v1"
    for b, s, r in (("Routing", "bursty", "cost"), ("Threshold", "bursty", "slo"),
                    ("Provisioning", "mooncake", "latency"), ("DualTimescale", "bursty", "latency"),
                    ("Routing", "mooncake", "slo"))
)


def small_kwargs(env_id: str) -> dict:
    """Tiny-episode kwargs for ``env_id`` (skips when the Mooncake trace is missing)."""
    kw: dict = {}
    if "-mooncake-" in env_id:
        if DATA_DIR is None:
            pytest.skip("Mooncake trace not found (set PRFAAS_DATA_DIR)")
        kw["data_dir"] = DATA_DIR
    if env_id.startswith("prfaas/Routing"):
        kw["n_requests"] = 40
    elif env_id.startswith("prfaas/Provisioning"):
        kw.update(n_requests=60, interval_s=15.0)
    else:
        kw.update(n_requests=60, interval_s=5.0)
    return kw


def make(env_id: str, **extra):
    """``gym.make`` with the small kwargs."""
    kw = small_kwargs(env_id)
    kw.update(extra)
    return gym.make(env_id, **kw)
