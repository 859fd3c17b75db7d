"""``prfaas-gym envs`` lists every registered id with one line each."""

from __future__ import annotations

import sys

from prfaas_gym.cli import main
from prfaas_gym.env.registration import BASE_IDS, ENV_IDS


def test_envs_lists_every_id(capsys):
    assert main(["envs"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [l.split()[0] for l in lines] == list(ENV_IDS)
    assert all(len(l.split(None, 1)) == 2 for l in lines)


def test_envs_base(capsys):
    assert main(["envs", "--base"]) == 0
    assert [l.split()[0] for l in capsys.readouterr().out.strip().splitlines()] == list(BASE_IDS)


def test_import_is_light():
    import subprocess

    code = ("import sys, prfaas_gym, gymnasium; "
            "assert 'prfaas/Routing-v1' in gymnasium.registry; "
            "bad = [m for m in ('torch', 'stable_baselines3', 'prfaas_gym.sim', 'simpy') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)
