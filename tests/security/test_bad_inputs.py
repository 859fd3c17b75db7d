"""Every bad input refused (issue 16 items 5-19 not owned by the env API): one line naming
the file and field or line, exit code 2, no traceback, nothing written, limits checked
before anything is allocated. Complements the cases in tests/cli/test_simulate_cli.py."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from prfaas_gym.cli import main

ROOT = Path(__file__).resolve().parents[2]
BASE = (ROOT / "envs" / "paper" / "prfaas_pd.yaml").read_text()
MOONCAKE = (ROOT / "envs" / "mooncake_conversation.yaml").read_text()


def _yaml(tmp: Path, text: str, name: str = "bad.yaml") -> str:
    p = tmp / name
    p.write_text(text)
    return str(p)


def _trace(tmp: Path, line: str) -> str:
    t = tmp / "t.jsonl"
    t.write_text('{"timestamp": 0, "input_length": 600, "output_length": 5, "hash_ids": [1, 2]}\n' + line + "\n")
    return _yaml(tmp, MOONCAKE.replace("mooncake/conversation_trace.jsonl", str(t)), "m.yaml")


ALIAS_BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{c}: &{c} [{', '.join(['*' + p] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi")) + "name: *i\n"

# (case id, argv builder(tmp) -> list, substrings the one error line must hold)
CASES = [
    ("inf-count", lambda t: ["simulate", _yaml(t, BASE.replace("instances: 4", "instances: .inf"))],
     ["bad.yaml", "clusters[0].instances"]),
    ("huge-instances", lambda t: ["simulate", _yaml(t, BASE.replace("instances: 4", "instances: 10000000"))],
     ["bad.yaml", "instances", "limit"]),
    ("huge-run-requests", lambda t: ["simulate", _yaml(t, BASE.replace("run: {requests: 2000}", "run: {requests: 1e9}"))],
     ["bad.yaml", "run.requests"]),
    ("huge-cli-requests", lambda t: ["simulate", "paper/prfaas_pd", "--requests", "1000000000"],
     ["requests", "limit"]),
    ("huge-duration", lambda t: ["simulate", _yaml(t, BASE.replace("run: {requests: 2000}", "run: {duration_s: 1.0e+12}"))],
     ["duration_s", "limit"]),
    ("inf-in-trace", lambda t: ["simulate", _trace(t, '{"timestamp": 1e400, "input_length": 6, "output_length": 1}')],
     ["t.jsonl:2"]),
    ("deep-yaml", lambda t: ["simulate", _yaml(t, "a: " + "[" * 5000 + "]" * 5000 + "\n")], ["bad.yaml", "nested"]),
    ("alias-bomb", lambda t: ["simulate", _yaml(t, ALIAS_BOMB)], ["bad.yaml", "expands"]),
    ("duplicate-key", lambda t: ["simulate", _yaml(t, BASE + "seed: 3\nseed: 4\n")], ["bad.yaml:", "duplicate key 'seed'"]),
    ("directory-scenario", lambda t: ["simulate", str(_dir(t, "scen"))], ["scen", "directory"]),
    ("non-utf8", lambda t: ["simulate", _bytes(t)], ["bad.yaml", "UTF-8"]),
    ("set-invalid-yaml", lambda t: ["simulate", "paper/prfaas_pd", "--set", "router.threshold_tokens=[1,"],
     ["--set", "router.threshold_tokens"]),
    ("set-bad-index", lambda t: ["simulate", "paper/prfaas_pd", "--set", "clusters[x].instances=3"],
     ["clusters[x].instances"]),
    ("seed-negative", lambda t: ["simulate", "paper/prfaas_pd", "--seed", "-1"], ["--seed"]),
    ("inf-slo", lambda t: ["simulate", _yaml(t, BASE.replace("ttft_s: 30.0", "ttft_s: .inf"))], ["bad.yaml", "slo.ttft_s"]),
    ("inf-fault-time", lambda t: ["simulate", _yaml(t, BASE + "faults:\n  - {link: vpc, at_s: .inf}\n")],
     ["bad.yaml", "faults[0].at_s"]),
    ("inf-bandwidth", lambda t: ["simulate", _yaml(t, BASE.replace("bandwidth_gbps: 100", "bandwidth_gbps: .inf"))],
     ["bad.yaml", "bandwidth_gbps"]),
    ("unknown-step-time-backend", lambda t: ["simulate", _yaml(t, BASE.replace("backend: table", "backend: magic"))],
     ["bad.yaml", "clusters[0].step_time", "magic"]),
    ("unknown-router", lambda t: ["simulate", _yaml(t, BASE.replace("name: prfaas-threshold", "name: nope"))],
     ["bad.yaml", "router", "nope"]),
    ("unknown-provisioner", lambda t: ["simulate", _yaml(t, BASE + "provisioner: {name: nope}\n")],
     ["bad.yaml", "provisioner", "nope"]),
    ("records-suffix", lambda t: ["simulate", "paper/prfaas_pd", "--records", str(t / "out.txt")], ["out.txt", "csv"]),
    ("records-under-a-file", lambda t: ["simulate", "paper/prfaas_pd", "--records", str(_file(t) / "r.csv")],
     ["r.csv"]),
    ("records-at-a-directory", lambda t: ["simulate", "paper/prfaas_pd", "--records", str(_dir(t, "d.csv"))],
     ["d.csv", "directory"]),
    ("compare-out-under-a-file", lambda t: ["compare", "paper/prfaas_pd", "--policies", "prfaas-threshold",
                                            "--seeds", "1", "--out", str(_file(t) / "o.csv")], ["o.csv"]),
    ("empty-weights", lambda t: ["route", _bundle(t, b""), "--input", "-"], ["weights.npz"]),
    ("corrupt-weights", lambda t: ["route", _bundle(t, b"PK\x03\x04garbage"), "--input", "-"], ["weights.npz"]),
]


def _bytes(t: Path) -> str:
    p = t / "bad.yaml"
    p.write_bytes(b"name: caf\xe9\n")
    return str(p)


def _file(t: Path) -> Path:
    f = t / "plain_file"
    f.write_text("x")
    return f


def _dir(t: Path, name: str) -> Path:
    d = t / name
    d.mkdir()
    return d


_BUNDLE: dict[str, Path] = {}


def _bundle(t: Path, weights: bytes) -> str:
    """A copy of a real bundle with ``weights.npz`` replaced."""
    import shutil

    from prfaas_gym.export import export_router_bundle

    if "src" not in _BUNDLE:
        _BUNDLE["src"] = export_router_bundle("trained:routing-paper", t / "src_bundle")
    d = t / "bundle"
    shutil.copytree(_BUNDLE["src"], d)
    (d / "weights.npz").write_bytes(weights)
    return str(d)


@pytest.mark.parametrize("case, argv, needles", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_refused(case, argv, needles, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = argv(tmp_path)
    before = {p for p in tmp_path.rglob("*")}
    t0 = time.process_time()  # CPU time: wall time on a shared machine is noise
    rc = main(args)
    elapsed = time.process_time() - t0
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2, (case, err)
    assert len(err) == 1 and "Traceback" not in err[0], err
    for n in needles:
        assert n in err[0], (n, err[0])
    assert {p for p in tmp_path.rglob("*")} == before, "something was written"
    assert elapsed < 20, f"{case}: refused only after {elapsed:.1f} s (limits must be checked first)"


def test_sigterm_leaves_no_temp_file(tmp_path):
    out = tmp_path / "records.csv"
    proc = subprocess.Popen([sys.executable, "-m", "prfaas_gym.cli", "simulate", "paper/prfaas_pd",
                             "--requests", "200000", "--records", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    status = Path(f"/proc/{proc.pid}/status")
    for _ in range(600):  # until the CLI has installed its SIGTERM handler (Linux: SigCgt bit 15)
        caught = [l for l in status.read_text().splitlines() if l.startswith("SigCgt:")] if status.exists() else []
        if caught and int(caught[0].split()[1], 16) & (1 << (signal.SIGTERM - 1)):
            break
        time.sleep(0.05)
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode in (130, 143) and "Traceback" not in err, err
    assert list(tmp_path.iterdir()) == []


def test_interrupted_records_write_leaves_nothing(tmp_path, monkeypatch):
    import csv

    from prfaas_gym.api import simulate_scenario, write_records

    sim = simulate_scenario("paper/prfaas_pd", n_requests=30)

    class Boom:
        def __init__(self, fh):
            pass

        def writerow(self, row):
            raise KeyboardInterrupt

    monkeypatch.setattr(csv, "writer", Boom)
    with pytest.raises(KeyboardInterrupt):
        write_records(sim.requests, tmp_path / "r.csv")
    assert list(tmp_path.iterdir()) == []


def test_outputs_get_normal_permissions(tmp_path):
    from prfaas_gym.api import simulate_scenario, write_records
    from prfaas_gym.export import export_router_bundle

    umask = os.umask(0o022)
    try:
        sim = simulate_scenario("paper/prfaas_pd", n_requests=30)
        write_records(sim.requests, tmp_path / "r.csv")
        b = export_router_bundle("trained:routing-paper", tmp_path / "b")
    finally:
        os.umask(umask)
    assert stat.S_IMODE((tmp_path / "r.csv").stat().st_mode) == 0o644
    assert stat.S_IMODE(b.stat().st_mode) == 0o755
    assert all(stat.S_IMODE(f.stat().st_mode) == 0o644 for f in b.iterdir())


@pytest.mark.parametrize("limit, needle", [("MAX_TRACE_BYTES", "over the limit"), ("MAX_REQUESTS", "rows (the limit)")])
def test_oversized_trace_is_refused_before_reading(limit, needle, tmp_path, capsys, monkeypatch):
    import prfaas_gym.workload.traces as traces

    monkeypatch.setattr(traces, limit, 1 if limit == "MAX_REQUESTS" else 100)
    scenario = _trace(tmp_path, '{"timestamp": 1, "input_length": 600, "output_length": 5, "hash_ids": [1, 2]}')
    rc = main(["simulate", scenario, "--requests", "2"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1, err
    assert "t.jsonl" in err[0] and needle in err[0], err[0]


def test_scenario_router_path_is_relative_to_the_scenario_file(tmp_path, monkeypatch):
    """``router: {name: ./pol}`` in a shared scenario names a policy beside the file, whatever
    the working directory (safe format only, as every policy a scenario names)."""
    import shutil

    from prfaas_gym.api import build_simulator
    from prfaas_gym.policies.trained import TRAINED_DIR
    from prfaas_gym.scenario import load_scenario

    pytest.importorskip("sb3_contrib")
    shared = tmp_path / "shared"
    shutil.copytree(TRAINED_DIR / "routing-paper", shared / "pol")
    lines = ["router: {name: ./pol}" if l.startswith("router:") else l for l in BASE.splitlines()]
    (shared / "s.yaml").write_text("\n".join(lines) + "\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    sim = build_simulator(load_scenario(shared / "s.yaml"), n_requests=5)
    assert "routing-paper" in str(sim.router.name) or "pol" in str(sim.router.name)
    (shared / "s.yaml").write_text("\n".join(l.replace("./pol", "./missing") for l in lines) + "\n")
    with pytest.raises(ValueError, match=r"s\.yaml: router: .*shared/missing"):
        build_simulator(load_scenario(shared / "s.yaml"), n_requests=5)


def test_scenario_learned_provisioner_path_is_relative_to_the_scenario_file(tmp_path, monkeypatch):
    """``provisioner: {name: ./prov}`` resolves against the scenario file, as ``router:`` does."""
    import shutil

    from prfaas_gym.api import build_simulator
    from prfaas_gym.policies.trained import TRAINED_DIR
    from prfaas_gym.scenario import load_scenario

    pytest.importorskip("sb3_contrib")
    shared = tmp_path / "shared"
    shutil.copytree(TRAINED_DIR / "diurnal-provisioning", shared / "prov")
    text = (Path(__file__).resolve().parents[2] / "envs" / "diurnal_day.yaml").read_text()
    lines = ["provisioner: {name: ./prov}" if l.startswith("provisioner:") else l for l in text.splitlines()]
    assert "provisioner: {name: ./prov}" in lines
    (shared / "s.yaml").write_text("\n".join(lines) + "\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    sim = build_simulator(load_scenario(shared / "s.yaml"), n_requests=5)
    assert sim.provisioner is not None and hasattr(sim.provisioner, "provision")
    (shared / "s.yaml").write_text("\n".join(l.replace("./prov", "./missing") for l in lines) + "\n")
    with pytest.raises(ValueError, match=r"s\.yaml: provisioner: .*shared/missing"):
        build_simulator(load_scenario(shared / "s.yaml"), n_requests=5)
