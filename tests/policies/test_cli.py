"""``prfaas-gym compare`` / ``sweep``: JSON shape, CSV, pairing, errors."""

from __future__ import annotations

import csv
import json

from prfaas_gym.cli import main
from prfaas_gym.commands.simulate import run_simulate  # noqa: F401  (simulate's keys are the reference)


def _json(capsys, argv):
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_compare_json(capsys, tmp_path):
    out = tmp_path / "r.csv"
    doc = _json(capsys, ["compare", "bursty_fluctuating", "--policies", "prfaas-threshold,local-only",
                         "--seeds", "2", "--seed-offset", "4", "--requests", "80", "--json", "--out", str(out)])
    assert doc["scenario"] == "bursty-fluctuating" and doc["seeds"] == [4, 5]
    sim = _json(capsys, ["simulate", "bursty_fluctuating", "--requests", "80", "--seed", "4", "--json"])
    res = doc["results"]["prfaas-threshold"]
    for k, v in sim.items():
        if k in ("scenario", "wall_time_s"):
            continue
        assert k in res
        lo, hi = res[k]["ci95"]
        assert lo is None or lo <= res[k]["mean"] <= hi
    assert "local-only" in doc["paired_differences"]
    rows = list(csv.DictReader(open(out)))
    assert len(rows) == 4 and {r["seed"] for r in rows} == {"4", "5"}
    # paired: the seed-4 threshold row equals `simulate --seed 4`
    r4 = [r for r in rows if r["seed"] == "4" and r["policy"] == "prfaas-threshold"][0]
    assert float(r4["goodput_rps"]) == sim["goodput_rps"]


def test_compare_with_provisioner_and_rate(capsys):
    doc = _json(capsys, ["compare", "bursty_fluctuating", "--policies",
                         "prfaas-threshold+paper-imbalance,prfaas-threshold", "--seeds", "1",
                         "--requests", "50", "--rate", "1.5", "--json"])
    assert list(doc["results"]) == ["prfaas-threshold+paper-imbalance", "prfaas-threshold"]


def test_sweep_json(capsys, tmp_path):
    out = tmp_path / "s.csv"
    doc = _json(capsys, ["sweep", "paper/prfaas_pd", "--policies", "prfaas-threshold",
                         "--rates", "1,2", "--seeds", "1", "--requests", "60", "--json", "--out", str(out)])
    pts = doc["curves"]["prfaas-threshold"]["goodput_rps"]
    assert [p["rate_rps"] for p in pts] == [1.0, 2.0]
    assert len(list(csv.DictReader(open(out)))) == 2
    doc2 = _json(capsys, ["compare", "paper/prfaas_pd", "--policies", "prfaas-threshold",
                          "--rates", "1,2", "--seeds", "1", "--requests", "60", "--json"])
    assert doc2["curves"] == doc["curves"]


def test_errors(capsys):
    assert main(["compare", "bursty_fluctuating", "--policies", "nope"]) == 2
    assert "known: local-only" in capsys.readouterr().err
    assert main(["compare", "bursty_fluctuating", "--policies", "random", "--seeds", "0"]) == 2
    assert main(["sweep", "bursty_fluctuating", "--policies", "random", "--rates", "1,x"]) == 2
    assert main(["compare", "bursty_fluctuating", "--policies", "random,random"]) == 2
