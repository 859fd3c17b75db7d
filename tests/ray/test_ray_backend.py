"""``--backend ray``: the same output as the serial run, on a local Ray and on a running
cluster (``ray start``), with the package and the data directory shipped by ``runtime_env``."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from prfaas_gym.cli import main
from prfaas_gym.parallel import JOURNAL, Backend, map_tasks

REPO = Path(__file__).resolve().parents[2]
COMPARE = ["compare", "bursty_fluctuating", "--policies", "prfaas-threshold,local-only,least-loaded",
           "--seeds", "2", "--requests", "120", "--json"]


def _out(capsys, argv):
    assert main(argv) == 0
    return capsys.readouterr().out


def _module_source(_task, data_dir=None):
    import prfaas_gym.parallel as mod

    return Path(mod.__file__).read_text(), os.environ.get("OMP_NUM_THREADS")


def test_workers_run_this_copy_of_the_package(local_ray):
    import prfaas_gym.parallel as mod

    out = map_tasks(_module_source, [0, 1], Backend("ray"))
    assert out[0] == (Path(mod.__file__).read_text(), "1")


def test_compare_and_sweep_identical_to_serial(local_ray, capsys, tmp_path):
    serial = _out(capsys, COMPARE)
    assert _out(capsys, COMPARE + ["--backend", "ray", "--resume", str(tmp_path)]) == serial
    lines = (tmp_path / JOURNAL).read_text().splitlines()
    assert len(lines) == 6
    # resumed on Ray: nothing runs again, same bytes
    assert _out(capsys, COMPARE + ["--backend", "ray", "--resume", str(tmp_path)]) == serial
    assert (tmp_path / JOURNAL).read_text().splitlines() == lines
    sweep = ["sweep", "paper/prfaas_pd", "--policies", "prfaas-threshold,local-only", "--rates", "1.5,3",
             "--seeds", "2", "--requests", "80", "--json"]
    assert _out(capsys, sweep + ["--backend", "ray"]) == _out(capsys, sweep)


def test_capacity_identical_to_serial(local_ray, capsys):
    argv = ["capacity", "paper/prfaas_pd", "--requests", "200", "--json"]

    def doc(extra):
        d = json.loads(_out(capsys, argv + extra))
        d.pop("wall_time_s")
        for run in d["bisection"]["trace"]:
            run.pop("wall_s")
        return d

    assert doc(["--backend", "ray"]) == doc([])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_existing_cluster_gets_package_and_data(tmp_path):
    """A cluster started with ``ray start --head``; the driver joins it with ``--address`` and
    ships the data directory (a trace the workers read from their working_dir)."""
    data = tmp_path / "data"
    (data / "mooncake").mkdir(parents=True)
    shutil.copy(REPO / "tests/data/traces/mooncake_tiny.jsonl", data / "mooncake/conversation_trace.jsonl")
    port = _free_port()
    ray_bin = Path(sys.executable).parent / "ray"
    # token authentication (Ray's default for clusters) with a token only this test knows
    env = {**os.environ, "RAY_ADDRESS": "", "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": os.urandom(16).hex()}
    env.pop("RAY_AUTH_TOKEN_PATH", None)
    env.pop("PRFAAS_DATA_DIR", None)
    temp = tempfile.mkdtemp(prefix="ray")  # short: Ray's socket paths must fit 107 bytes
    started = subprocess.run([str(ray_bin), "start", "--head", f"--port={port}", "--num-cpus=2",
                              "--node-ip-address=127.0.0.1", "--include-dashboard=false", f"--temp-dir={temp}"],
                             env=env, capture_output=True, text=True, timeout=300)
    assert started.returncode == 0, started.stderr[-2000:]
    try:
        argv = [sys.executable, "-m", "prfaas_gym.cli", "compare", "mooncake_conversation",
                "--policies", "prfaas-threshold,local-only", "--seeds", "2", "--requests", "40",
                "--json", "--data-dir", str(data)]
        serial = subprocess.run(argv, check=True, env=env, capture_output=True, text=True,
                                cwd=REPO, timeout=300).stdout
        remote = subprocess.run(argv + ["--backend", "ray", "--address", f"127.0.0.1:{port}"],
                                env=env, capture_output=True, text=True, cwd=REPO, timeout=600)
        assert remote.returncode == 0, remote.stderr[-2000:]
        assert remote.stdout == serial and json.loads(serial)["results"]
    finally:
        subprocess.run([str(ray_bin), "stop", "--force"], env=env, capture_output=True, timeout=120)
        shutil.rmtree(temp, ignore_errors=True)


def test_ray_missing_is_a_one_line_error(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # as if the extra were not installed
    import prfaas_gym.ray_backend as rb

    monkeypatch.setattr(rb, "_SESSION", {})
    assert main(COMPARE + ["--backend", "ray"]) == 2
    assert "needs the 'ray' extra" in capsys.readouterr().err
