"""``agents/headroom.py``: relaxing a resource reruns the policy on the same seeds."""

from __future__ import annotations

import pytest

from tests.agents.conftest import load_script


def test_headroom_defaults_and_custom_variant(tmp_path, capsys):
    mod = load_script("headroom")
    report = mod.main(["--seeds", "2", "--seed-offset", "7", "--requests", "120",
                       "--variant", "same=run.requests:2000", "--json", str(tmp_path / "h.json")])
    v = report["variants"]
    assert {"link vpc: no dips", "pd: 10x decode batch", "prfaas: +1 instance", "same"} <= set(v)
    # a no-op override reproduces the original runs exactly (paired seeds, same workload)
    assert v["same"]["per_seed"] == [1.0, 1.0]
    assert (tmp_path / "h.json").is_file()
    assert "| pd: 10x decode batch |" in capsys.readouterr().out


def test_headroom_bad_variant():
    mod = load_script("headroom")
    with pytest.raises(ValueError, match="--variant"):
        mod.main(["--seeds", "1", "--variant", "oops"])
