"""The ``plan`` subcommand, registered on a bare argparse parser as cli.py will do."""

from __future__ import annotations

import argparse
import json

import pytest

from prfaas_gym.planner import JSON_KEYS
from prfaas_gym.planner.cli import add_plan_parser

pytest.importorskip("prfaas_gym.scenario")


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="prfaas-gym")
    add_plan_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


@pytest.mark.parametrize("name", ["prfaas_pd", "homogeneous", "naive_heterogeneous"])
def test_plan_json(name, capsys):
    assert run(["plan", f"paper/{name}", "--json"]) == 0
    obj = json.loads(capsys.readouterr().out)
    assert tuple(obj) == JSON_KEYS
    assert obj["deployment"] == name
    assert (obj["threshold_tokens"] is None) == (name != "prfaas_pd")


def test_plan_text_and_errors(capsys):
    assert run(["plan", "paper/prfaas_pd", "--convention", "expectation"]) == 0
    assert "expectation convention" in capsys.readouterr().out
    assert run(["plan", "envs/does-not-exist.yaml"]) == 2
    assert "prfaas-gym plan:" in capsys.readouterr().err
