"""Engine profiles (eager / vllm / sglang) of the roofline and their calibration on AIConfigurator's tables."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from prfaas_gym.perf import PerfInputError, RooflineModel, build_step_time_model
from prfaas_gym.perf.cli import main
from prfaas_gym.perf.engines import ENGINES, engine_efficiency, get_engine
from prfaas_gym.profiles import get_hardware, get_model

SHARED = Path(os.environ.get("PRFAAS_SHARED_DIR", Path(__file__).resolve().parents[3] / "shared"))
AIC = SHARED / "data" / "aiconfigurator"
needs_aic = pytest.mark.skipif(not (AIC / "h100_sxm" / "gemm").exists(), reason="../shared/data/aiconfigurator absent")


def _rm(engine: str, model: str = "llama3-8b", g: int = 1, hw: str = "h100-sxm") -> RooflineModel:
    return RooflineModel(get_model(model), get_hardware(hw), g, engine=engine)


def test_eager_uses_the_hardware_terms_and_scenarios_default_to_vllm() -> None:
    hw = get_hardware("h100-sxm")
    assert engine_efficiency("eager", hw) == hw.efficiency
    assert _rm("eager").eff == hw.efficiency
    stm = build_step_time_model(None, get_model("llama3-8b"), hw, 1)
    assert stm.engine.name == "vllm" and stm.eff != hw.efficiency
    eager = build_step_time_model({"backend": "roofline", "engine": "eager"}, get_model("llama3-8b"), hw, 1)
    assert eager.prefill_s([(2048, 0)]) == _rm("eager").prefill_s([(2048, 0)])


def test_unknown_engine_names_the_field() -> None:
    m, hw = get_model("llama3-8b"), get_hardware("h100-sxm")
    for spec in ({"backend": "roofline", "engine": "trt"},
                 {"backend": "polynomial", "prefill_s": [0.1, 0, 0], "decode_step_s": 0.02, "engine": 3}):
        with pytest.raises(PerfInputError, match=r"step_time.engine: unknown engine"):
            build_step_time_model(spec, m, hw, 1)
    # measured curves may record their engine
    build_step_time_model({"backend": "polynomial", "prefill_s": [0.1, 0, 0], "decode_step_s": 0.02,
                           "engine": "sglang"}, m, hw, 1)


def test_fused_elementwise_is_cheaper_than_eager() -> None:
    v, e = _rm("vllm"), _rm("eager")
    assert v._small_ops_time(8192.0) < 0.5 * e._small_ops_time(8192.0)
    # eager pays 84h+20(q+k)+10f bytes per token and layer, fused 16h+4(q+k)+6f
    assert v._ew_groups[0][1] < 0.5 * e._ew_groups[0][1]


def test_host_launch_floor_only_where_the_host_issues_kernels() -> None:
    e = get_hardware("h100-sxm").efficiency
    floor = 32 * e.layer_overhead_s
    assert _rm("eager").prefill_s([(16, 0)]) >= floor
    assert _rm("vllm").prefill_s([(16, 0)]) < floor  # piecewise CUDA graphs: no per-layer launch floor
    assert get_engine("sglang").host_launch_floor and not get_engine("vllm").host_launch_floor


def test_cuda_graph_padding_of_decode() -> None:
    v = get_engine("vllm")
    assert [v.padded_batch(b) for b in (1, 3, 5, 9, 33, 255, 257, 512, 600)] == [1, 4, 8, 16, 40, 256, 272, 512, 600]
    assert get_engine("eager").padded_batch(33) == 33
    rm = _rm("vllm")
    # batch 33 runs the GEMMs of the batch-40 graph: not cheaper than 40 sequences' GEMMs would be alone
    assert rm.decode_s(33, 33 * 1024) > rm.decode_s(32, 32 * 1024)
    assert rm._dense_time(40.0, 0.0) == pytest.approx(rm._dense_time(float(v.padded_batch(33)), 0.0))


def test_custom_allreduce_is_flat_and_below_nccl_tree_for_small_messages() -> None:
    v, e = _rm("vllm", "llama3-70b", 8), _rm("eager", "llama3-70b", 8)
    assert v._comm_time(1.0) < e._comm_time(1.0)
    lat2 = _rm("vllm", "llama3-70b", 2)._comm_time(1.0)
    assert v._comm_time(1.0) < 1.5 * lat2  # one-shot: latency barely grows with GPUs


@pytest.mark.parametrize("engine", list(ENGINES))
@pytest.mark.parametrize("model,g", [("llama3-8b", 1), ("llama3-70b", 4), ("deepseek-v3", 8), ("kimi-linear-48b", 1)])
def test_every_engine_is_monotone(engine: str, model: str, g: int) -> None:
    rm = _rm(engine, model, g, "h200-sxm")
    prev = 0.0
    for n in (1, 64, 512, 4096, 32768):
        t = rm.prefill_s([(n, 0)])
        assert t > prev
        prev = t
    prev = 0.0
    for b in (1, 8, 64, 256):
        t = rm.decode_s(b, b * 2048)
        assert t > prev
        prev = t


def test_predict_cli_engine_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "c.csv"
    p.write_text("model,phase,batch,tokens,context\nllama3-8b,prefill,1,2048,2048\n")
    got = {}
    for eng in ("eager", "vllm", "sglang"):
        assert main(["perf", "predict", "--hardware", "h100-sxm", "--cases", str(p), "--engine", eng]) == 0
        got[eng] = float(capsys.readouterr().out.strip().splitlines()[-1].split(",")[-1])
    assert got["vllm"] < got["eager"]
    assert got["eager"] == pytest.approx(_rm("eager").prefill_s([(2048, 0)]) * 1e3, rel=1e-4)


def test_calibrate_cli_argument_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["perf", "calibrate", "--hardware", "h100-sxm"]) == 2
    assert "--measurements" in capsys.readouterr().err
    assert main(["perf", "calibrate", "--hardware", "h100-sxm", "--engine", "eager", "--aiconfigurator", str(tmp_path)]) == 2
    assert "--engine vllm" in capsys.readouterr().err
    assert main(["perf", "calibrate", "--hardware", "h100-sxm", "--aiconfigurator", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "\n" not in err.strip() and "h100_sxm" in err
    assert main(["perf", "calibrate", "--hardware", "h20", "--aiconfigurator", str(tmp_path)]) == 2
    assert "no AIConfigurator tables" in capsys.readouterr().err


@needs_aic
def test_database_sums_match_the_issue_figures() -> None:
    from prfaas_gym.perf.aic_tables import AicTables, database_step

    tab = AicTables.for_hardware(SHARED / "data", "h200-sxm")
    d = database_step(tab, get_model("llama3-70b"), 4, batch=64, context_tokens=64 * 2048)
    assert d["gemm"] == pytest.approx(9.6, rel=0.03) and d["elementwise"] == pytest.approx(1.0, rel=0.05)
    assert d["allreduce"] == pytest.approx(1.9, rel=0.05)
    d = database_step(tab, get_model("llama3-8b"), 1, [(8192, 0)])
    assert d["gemm"] == pytest.approx(157.5, rel=0.02) and d["elementwise"] == pytest.approx(10.7, rel=0.02)


@needs_aic
@pytest.mark.slow
def test_packaged_vllm_terms_are_the_calibration_fixed_point(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "vllm.yaml"
    assert main(["perf", "calibrate", "--engine", "vllm", "--aiconfigurator", str(SHARED / "data"),
                 "--hardware", "h100-sxm", "--out", str(out)]) == 0
    fitted = yaml.safe_load(out.read_text())["hardware"]["h100-sxm"]
    shipped = engine_efficiency("vllm", get_hardware("h100-sxm")).as_dict()
    for k, v in fitted.items():
        assert v == pytest.approx(shipped[k], rel=0.02, abs=1e-7), k


def test_aic_mem_op_formula_matches_the_package() -> None:
    pytest.importorskip("aiconfigurator_core")
    import aiconfigurator_core.sdk.operations as ops
    from aiconfigurator_core.sdk import perf_database as pdb

    from prfaas_gym.perf.aic_tables import aic_estimate_source, aic_mem_op_ms

    db = pdb.get_database("h100_sxm", "vllm", "0.24.0", database_mode="EMPIRICAL", allow_missing_data=True)
    h = 4096
    op = ops.ElementWise("add_norm", 1, 2 * h, 2 * h, 0.8)
    for x in (1, 64, 2048, 8192):
        assert aic_mem_op_ms("h100_sxm", x * 4 * h * 2) == pytest.approx(op._engine_query(db, x=x), rel=1e-3)
    assert "equal to the installed aiconfigurator" in aic_estimate_source("h200_sxm")


def test_moe_routing_counts_by_hand() -> None:
    from prfaas_gym.perf.moe_routing import rank_load

    # uniform: tokens*k/g pairs on E_g (1 - (1 - k/E)^M) expected experts
    pairs, touched = rank_load("uniform", 4, 256, 8, 8)
    assert pairs == 4.0 and touched == pytest.approx(32 * (1 - (1 - 8 / 256) ** 4))
    assert rank_load("balanced", 4, 256, 8, 8) == (4.0, 4.0)
    assert rank_load("balanced", 64, 256, 8, 8) == (64.0, 32.0)
    # collector routing through DeepSeek's grouped top-k (8 groups, 4 kept): one token picks experts
    # 0, 32, ..., 224; groups 0-3 win the tie, keeping 0, 32, 64, 96, and ties fill 1, 2, 3, 4
    assert rank_load("collector", 1, 256, 8, 8, 8, 4) == (5.0, 5.0)
    assert rank_load("collector", 1, 256, 8, 256, 8, 4) == (1.0, 1.0)
    # EP rank 0's share of the pairs at large batches: 8 : 6 : 5 : 4 : 2 : 1 (of 8 per token)
    shares = [rank_load("collector", 4096, 256, 8, g, 8, 4)[0] / 4096 for g in (2, 4, 8, 64, 128, 256)]
    assert shares == [8.0, 6.0, 5.0, 4.0, 2.0, 1.0]
    # without groups the collector's routing is balanced
    assert rank_load("collector", 64, 256, 8, 8) == rank_load("balanced", 64, 256, 8, 8)


def test_moe_routing_is_a_roofline_option_named_in_errors() -> None:
    m, hw = get_model("deepseek-v3"), get_hardware("h200-sxm")
    uni = build_step_time_model({"backend": "roofline"}, m, hw, 8)
    col = build_step_time_model({"backend": "roofline", "moe_routing": "collector"}, m, hw, 8)
    # the collector's routing piles 5/8 of the pairs on rank 0: a long prefill is much slower
    assert col.prefill_s([(8192, 0)]) > 1.5 * uni.prefill_s([(8192, 0)])
    with pytest.raises(PerfInputError, match=r"step_time.moe_routing"):
        build_step_time_model({"backend": "roofline", "moe_routing": "skewed"}, m, hw, 8)


def test_chunked_linear_attention_walks_chunks_in_order() -> None:
    import dataclasses

    hw = get_hardware("h100-sxm")
    m = get_model("kimi-linear-48b")
    grp = m.layers[0]
    # a serial chunk step of 1 ms dominates: time = chunks of the longest sequence x 1 ms (+ traffic)
    eff = dataclasses.replace(engine_efficiency("vllm", hw), linear_attention_chunk_s=1e-3, linear_attention_latency_s=0.0)
    rm = RooflineModel(m, hw, 1, eff)
    one = rm._attention_time(grp, [(4096, 0)], False)[0]
    four = rm._attention_time(grp, [(1024, 0)] * 4, False)[0]
    ragged = rm._attention_time(grp, [(1024, 0), (100, 0)], False)[0]
    assert 0.064 <= one < 0.0645 and 0.016 <= four < 0.0165 and 0.016 <= ragged < 0.0162
    # with no serial floor the chunk steps are bound by the programs' FLOPs: batching is free
    eff = dataclasses.replace(eff, linear_attention_chunk_s=0.0)
    rm = RooflineModel(m, hw, 1, eff)
    assert rm._attention_time(grp, [(1024, 0)] * 4, False)[0] == pytest.approx(
        rm._attention_time(grp, [(4096, 0)], False)[0], rel=1e-9)


def test_rotary_follows_the_attention_kind() -> None:
    from prfaas_gym.profiles.model import AttentionSpec

    gqa = AttentionSpec(kind="gqa", num_heads=32, num_kv_heads=8, head_dim=128)
    mla = AttentionSpec(kind="mla", num_heads=128, kv_lora_rank=512, qk_nope_head_dim=128, qk_rope_head_dim=64,
                        v_head_dim=128)
    assert gqa.rotary_dims == (4096, 1024) and mla.rotary_dims == (8192, 64)
    assert AttentionSpec(kind="mla", num_heads=32, kv_lora_rank=512, qk_nope_head_dim=128, qk_rope_head_dim=64,
                         v_head_dim=128, variant="nope").rotary_dims == (0, 0)
    assert [g.attention.rotary_dims for g in get_model("kimi-linear-48b").layers] == [(0, 0)] * 3


@needs_aic
def test_mla_moe_and_kda_steps_meet_the_target_against_the_database() -> None:
    """Issue #17: DeepSeek-V3 (MLA + MoE) and Kimi-Linear (KDA) full steps within 5% MAPE, max 12%."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    import perf_engine_table as table
    from prfaas_gym.perf.aic_tables import AicTables

    grid = table.GRID
    table.GRID = tuple((n, g) for n, g in grid if n in ("deepseek-v3", "kimi-linear-48b"))
    try:
        rows = table.collect({h: AicTables.for_hardware(SHARED / "data", h) for h in ("h100-sxm", "h200-sxm")}, "vllm")
    finally:
        table.GRID = grid
    groups: dict[tuple, list[float]] = {}
    for r in rows:
        groups.setdefault((r["gpu"], r["model"], r["tp"], r["phase"]), []).append(
            abs(r["step"] / sum(r["db"].values()) - 1.0))
    assert len(groups) == 12
    for key, errs in groups.items():
        assert sum(errs) / len(errs) < 0.05 and max(errs) < 0.12, key
