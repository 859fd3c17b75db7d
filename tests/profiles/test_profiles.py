"""Tests for the packaged hardware/model profiles and the YAML loaders."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from prfaas_gym.profiles import (
    LinkProfile,
    ProfileError,
    UnknownProfileError,
    get_hardware,
    get_model,
    hardware_from_dict,
    hardware_to_dict,
    list_hardware,
    list_models,
)

MIB = 2**20


def test_packaged_names() -> None:
    assert set(list_hardware()) >= {"h100-sxm", "h200-sxm", "h20", "b200", "a100-80g"}
    assert set(list_models()) >= {"llama3-8b", "llama3-3b", "qwen2.5-14b", "llama3-70b", "deepseek-v3",
                                  "kimi-linear-48b", "prfaas-1t-hybrid"}


@pytest.mark.parametrize("name", ["h100-sxm", "h200-sxm", "h20", "b200", "a100-80g"])
def test_hardware_fields(name: str) -> None:
    hw = get_hardware(name)
    assert hw.name == name
    for attr in ("hbm_capacity_bytes", "price_per_gpu_hour_usd", "rdma_bandwidth_bytes_s",
                 "peak_bf16_flops_s", "peak_fp8_flops_s", "hbm_bandwidth_bytes_s", "peak_flops_s"):
        assert getattr(hw, attr) > 0
    assert hw.gpus_per_node == 8


def test_h100_spec_sheet() -> None:
    hw = get_hardware("h100-sxm")
    assert hw.peak_bf16_flops_s == pytest.approx(989.4e12)
    assert hw.hbm_bandwidth_bytes_s == pytest.approx(3.35e12)
    assert hw.rdma_bandwidth_bytes_s == pytest.approx(3200e9 / 8)


def test_llama3_8b_kv_and_params() -> None:
    m = get_model("llama3-8b")
    assert m.kv_bytes_per_token == 131072
    assert m.num_layers == 32
    assert m.state_bytes_per_request == 0
    assert not m.is_hybrid
    assert m.total_params == pytest.approx(8.03e9, rel=0.01)
    assert m.weight_bytes == pytest.approx(2 * m.total_params)
    assert m.kv_bytes(10) == 10 * 131072


@pytest.mark.parametrize("name,params", [("llama3-3b", 3.21e9), ("qwen2.5-14b", 14.7e9),
                                         ("llama3-70b", 70.6e9), ("deepseek-v3", 671e9)])
def test_param_counts(name: str, params: float) -> None:
    assert get_model(name).total_params == pytest.approx(params, rel=0.02)


def test_deepseek_v3() -> None:
    m = get_model("deepseek-v3")
    assert m.num_layers == 61
    assert m.kv_bytes_per_token == 61 * 576 * 2
    assert m.active_params == pytest.approx(37e9, rel=0.05)
    assert m.is_moe and not m.is_hybrid


def test_kimi_linear_is_hybrid() -> None:
    m = get_model("kimi-linear-48b")
    assert m.is_hybrid and m.state_bytes_per_request > 0
    kinds = [g.attention.kind for g in m.layers for _ in range(g.count)]
    assert kinds.count("linear") == 3 * kinds.count("mla") - 1  # 20 KDA : 7 MLA


def test_1t_hybrid_matches_table5() -> None:
    m = get_model("prfaas-1t-hybrid")
    assert m.is_hybrid
    assert m.kv_bytes_per_token == 15 * 576 * 2
    assert m.state_bytes_per_request / MIB == pytest.approx(174, rel=0.01)
    for tokens, s_kv_mib in [(1024, 190.8), (8192, 308.9), (32768, 701.3), (131072, 2316.3)]:
        assert m.kv_bytes(tokens) / MIB == pytest.approx(s_kv_mib, rel=0.03)
    assert m.total_params == pytest.approx(1.0e12, rel=0.1)


def test_unknown_names_list_known() -> None:
    with pytest.raises(UnknownProfileError) as e:
        get_hardware("h999")
    msg = str(e.value)
    assert msg.startswith("unknown hardware 'h999' (known: ")
    assert "h100-sxm" in msg and "a100-80g" in msg
    assert isinstance(e.value, ValueError)
    with pytest.raises(UnknownProfileError, match="llama3-8b"):
        get_model("gpt-5")


def test_user_yaml_path(tmp_path: Path) -> None:
    p = tmp_path / "tiny.yaml"
    p.write_text("name: tiny\nhidden_size: 64\nvocab_size: 100\nlayers:\n"
                 "  - count: 2\n    attention: {kind: mha, num_heads: 4, head_dim: 16}\n"
                 "    ffn: {kind: dense, intermediate_size: 128}\n")
    m = get_model(str(p))
    assert m.name == "tiny"
    assert m.kv_bytes_per_token == 2 * 2 * 4 * 16 * 2


def test_bad_model_names_file_and_field(tmp_path: Path) -> None:
    p = tmp_path / "bad.yaml"
    p.write_text("name: bad\nhidden_size: 64\nvocab_size: 100\nlayers:\n"
                 "  - count: 2\n    attention: {kind: gqa, num_heads: 4, num_kv_heads: 3, head_dim: 16}\n"
                 "    ffn: {kind: dense, intermediate_size: 128}\n")
    with pytest.raises(ProfileError, match=r"bad\.yaml: layers\[0\]\.attention\.num_kv_heads"):
        get_model(p)
    p.write_text("name: bad\nhidden_size: 64\nvocab_size: 100\nlayrs: []\n")
    with pytest.raises(ProfileError, match=r"bad\.yaml: layrs: unknown field"):
        get_model(p)


def test_bad_hardware_names_field(tmp_path: Path) -> None:
    d = hardware_to_dict(get_hardware("h100-sxm"))
    d["hbm_bandwidth_tbs"] = -1
    with pytest.raises(ProfileError, match="x.yaml: hbm_bandwidth_tbs"):
        hardware_from_dict(d, "x.yaml")
    d = hardware_to_dict(get_hardware("h100-sxm"))
    d["efficiency"]["compute_efficiency"] = 2.0
    with pytest.raises(ProfileError, match="efficiency.compute_efficiency"):
        hardware_from_dict(d, "x.yaml")


def test_hardware_round_trip() -> None:
    hw = get_hardware("h20")
    assert hardware_from_dict(hardware_to_dict(hw), "rt") == hw


def test_link_profile_validation() -> None:
    link = LinkProfile("vpc", bandwidth_bytes_s=100e9 / 8, rtt_s=0.002, tcp_connections=8,
                       per_connection_bytes_s=1e9, bandwidth_series=((0.0, 12.5e9), (10.0, 5e9)))
    assert link.flow_cap_bytes_s == 8e9
    with pytest.raises(ValueError, match="bandwidth_bytes_s"):
        LinkProfile("x", bandwidth_bytes_s=0)
    with pytest.raises(ValueError, match="loss"):
        LinkProfile("x", bandwidth_bytes_s=1, loss=1.5)
    with pytest.raises(ValueError, match="not increasing"):
        LinkProfile("x", bandwidth_bytes_s=1, bandwidth_series=((1.0, 1.0), (0.5, 1.0)))
    assert math.isinf(LinkProfile("x", bandwidth_bytes_s=1).per_connection_bytes_s)
