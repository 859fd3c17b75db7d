"""Every scenario's `workload:` mapping under envs/ builds (guards the schema against drift)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from prfaas_gym.workload import build_workload, workload_stats

REPO = Path(__file__).resolve().parents[2]
SHARED_DATA = REPO.parent / "shared" / "data"
SCENARIOS = sorted((REPO / "envs").rglob("*.yaml"))


@pytest.mark.parametrize("path", SCENARIOS, ids=[str(p.relative_to(REPO)) for p in SCENARIOS])
def test_scenario_workload_builds(path: Path) -> None:
    spec = (yaml.safe_load(path.read_text()) or {}).get("workload")
    if not isinstance(spec, dict):
        pytest.skip("no workload mapping")
    if spec.get("kind") != "synthetic" and not SHARED_DATA.is_dir():
        pytest.skip(f"trace data not found at {SHARED_DATA}")
    kw = {} if spec.get("duration_s") and not spec.get("requests") else {"n_requests": 500}
    reqs = build_workload(spec, rng=np.random.default_rng(0), data_dir=SHARED_DATA, source=str(path), **kw)
    assert reqs and workload_stats(reqs)["rate_rps"] > 0
