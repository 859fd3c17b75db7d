"""The end-to-end peer check (benchmarks/peer_check.py); skipped when the peer extra is absent."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("PRFAAS_SHARED_DIR", ROOT.parent / "shared"))
sys.path.insert(0, str(ROOT / "benchmarks"))


def test_timing_profile_has_the_mocker_layout() -> None:
    import peer_check as pc

    arr = pc.profile_arrays(lambda n: 1.0 + n * 1e-3, lambda b, ctx: 5.0 + b * 0.01 + ctx * 1e-6, 4096)
    assert arr["decode_itl"].shape == (len(arr["decode_active_kv_tokens"]), len(arr["decode_context_length"]))
    assert np.all(np.diff(arr["prefill_ttft_ms"]) > 0)
    reqs = pc.make_requests(50, 2.0, 0)
    assert len(reqs) == 50 and all(pc.ISL[0] <= r.input_tokens <= pc.ISL[1] for r in reqs)


@pytest.mark.skipif(not (SHARED / "data/aiconfigurator/h100_sxm").exists(), reason="../shared data absent")
def test_light_load_matches_the_peer(tmp_path: Path) -> None:
    pytest.importorskip("dynamo.replay", reason="peer extra (ai-dynamo) not installed")
    import peer_check as pc
    from prfaas_gym.perf.aic_tables import AicTables

    case = pc.CASES[0]
    pre, dec = pc.db_timing(AicTables.for_hardware(SHARED / "data", case.hardware), case)
    np.savez(tmp_path / "db.npz", **pc.profile_arrays(pre, dec, pc.ISL[1] + pc.OSL[1]))
    reqs = pc.make_requests(40, 0.1 * pc.capacity_rps(pre, dec), 3)
    ours, peer = pc.run_ours(case, reqs), pc.run_peer(reqs, tmp_path / "db.npz", tmp_path)
    assert len(ours["ttft_ms"]) == len(peer["ttft_ms"]) == 40
    for k in ("ttft_ms", "tpot_ms"):
        assert np.median(ours[k]) / np.median(peer[k]) == pytest.approx(1.0, abs=0.1), k
