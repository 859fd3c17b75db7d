"""`prfaas-gym simulate`: JSON contract, determinism across processes, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REQUIRED = [
    "completed", "rejected", "throughput_rps", "output_tokens_per_s", "goodput_rps", "ttft_mean_s",
    "ttft_p50_s", "ttft_p90_s", "ttft_p99_s", "tpot_mean_s", "tpot_p90_s", "tpot_p99_s",
    "slo_attainment", "egress_gbps_mean", "egress_gbps_p99", "sim_time_s", "wall_time_s",
]


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "prfaas_gym.cli", *args], capture_output=True,
                          text=True, cwd=cwd, env={**os.environ, "PYTHONHASHSEED": "random"})


def test_simulate_json_has_every_metric_and_exact_count():
    out = cli("simulate", "paper/prfaas_pd", "--requests", "150", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    for key in REQUIRED:
        assert key in data
    assert data["completed"] + data["rejected"] == 150


def test_same_seed_same_bytes_across_processes():
    runs = [cli("simulate", "bursty_fluctuating", "--requests", "200", "--seed", "3", "--json") for _ in range(2)]
    outs = []
    for r in runs:
        assert r.returncode == 0, r.stderr
        data = json.loads(r.stdout)
        data.pop("wall_time_s")  # the one field that measures the machine, not the simulation
        outs.append(json.dumps(data))
    assert outs[0] == outs[1]
    other = json.loads(cli("simulate", "bursty_fluctuating", "--requests", "200", "--seed", "4", "--json").stdout)
    assert other["ttft_mean_s"] != json.loads(runs[0].stdout)["ttft_mean_s"]


def test_records_file_written(tmp_path):
    path = tmp_path / "records.csv"
    out = cli("simulate", "paper/prfaas_pd", "--requests", "50", "--records", str(path))
    assert out.returncode == 0, out.stderr
    lines = path.read_text().splitlines()
    assert len(lines) == 51 and lines[0].startswith("rid,arrival_s")


def _write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


BASE = Path(__file__).resolve().parents[2] / "envs" / "paper" / "prfaas_pd.yaml"


def _assert_one_line_error(out: subprocess.CompletedProcess, *needles: str) -> None:
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    for n in needles:
        assert n in lines[0], lines[0]


def test_unknown_scenario_key(tmp_path):
    p = _write(tmp_path, "bad.yaml", BASE.read_text() + "\nthreshhold: 3\n")
    _assert_one_line_error(cli("simulate", str(p)), "bad.yaml", "threshhold", "unknown key")


def test_unknown_profile_lists_known(tmp_path):
    p = _write(tmp_path, "bad.yaml", BASE.read_text().replace("hardware: h20\n", "hardware: h21\n"))
    _assert_one_line_error(cli("simulate", str(p)), "bad.yaml", "clusters[1].hardware", "h21", "h200-sxm")


def test_negative_bandwidth(tmp_path):
    p = _write(tmp_path, "bad.yaml", BASE.read_text().replace("bandwidth_gbps: 100", "bandwidth_gbps: -5"))
    _assert_one_line_error(cli("simulate", str(p)), "links[0].bandwidth_gbps", "positive")


def test_zero_bandwidth(tmp_path):
    p = _write(tmp_path, "bad.yaml", BASE.read_text().replace("bandwidth_gbps: 100", "bandwidth_gbps: 0"))
    _assert_one_line_error(cli("simulate", str(p)), "links[0].bandwidth_gbps")


def test_no_decode_capacity(tmp_path):
    p = _write(tmp_path, "bad.yaml", BASE.read_text().replace("prefill_instances: 3", "prefill_instances: 8"))
    _assert_one_line_error(cli("simulate", str(p)), "clusters[1].prefill_instances", "no decode capacity")


def test_weights_do_not_fit(tmp_path):
    p = _write(tmp_path, "bad.yaml", BASE.read_text().replace("weight_dtype: int4", "weight_dtype: fp8"))
    _assert_one_line_error(cli("simulate", str(p)), "no decode capacity", "do not fit")


def test_malformed_trace_line(tmp_path):
    trace = _write(tmp_path, "t.jsonl", '{"timestamp": 0, "input_length": 600, "output_length": 5, "hash_ids": [1, 2]}\n'
                   '{"timestamp": 10, "input_length": 6\n')
    text = (Path(__file__).resolve().parents[2] / "envs" / "mooncake_conversation.yaml").read_text()
    p = _write(tmp_path, "m.yaml", text.replace("mooncake/conversation_trace.jsonl", str(trace)))
    _assert_one_line_error(cli("simulate", str(p)), "t.jsonl:2")


def test_invalid_yaml_names_line(tmp_path):
    p = _write(tmp_path, "bad.yaml", "name: x\nclusters: [\n  - a\n")
    out = cli("simulate", str(p))
    _assert_one_line_error(out, "bad.yaml:")


def test_unknown_builtin_scenario_lists_known():
    _assert_one_line_error(cli("simulate", "nope"), "unknown scenario", "paper/prfaas_pd")


def test_bad_requests_argument():
    _assert_one_line_error(cli("simulate", "--requests", "0"), "--requests")


@pytest.mark.parametrize("flag", [["--rate", "-1"]])
def test_bad_rate(flag):
    _assert_one_line_error(cli("simulate", *flag), "--rate")


def test_simulate_at_the_plan():
    # homogeneous.yaml starts at 9P/3D; --plan applies the planner's split (also 9/3) and
    # routes local-only; a deliberately bad split is corrected by --plan
    bad = cli("simulate", "paper/homogeneous", "--set", "clusters[0].prefill_instances=3", "--requests", "200", "--json")
    planned = cli("simulate", "paper/homogeneous", "--set", "clusters[0].prefill_instances=3", "--plan",
                  "--requests", "200", "--json")
    assert bad.returncode == 0 and planned.returncode == 0, planned.stderr
    assert json.loads(planned.stdout)["ttft_p90_s"] < json.loads(bad.stdout)["ttft_p90_s"]


def test_permanently_failed_decode_is_reported_not_looped(tmp_path):
    text = BASE.read_text().replace("prefill_instances: 3", "prefill_instances: 7")
    # the only decode instance fails for good; link fluctuation keeps events coming forever
    text += "faults:\n  - {at_s: 0, cluster: pd, instance: 7}\n"
    text = text.replace("per_connection_gbps: 10", "per_connection_gbps: 10\n    fluctuation: {interval_s: 10}")
    p = _write(tmp_path, "dead.yaml", text)
    out = cli("simulate", str(p), "--requests", "20")
    _assert_one_line_error(out, "no request has ended")
