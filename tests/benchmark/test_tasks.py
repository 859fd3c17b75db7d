"""The task registry: ids, seed splits, and test seeds kept out of every training config."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from prfaas_gym.benchmark import TASKS, SeedSplits, check_training_seeds, get_task, list_tasks
from prfaas_gym.benchmark.tasks import all_test_seeds
from prfaas_gym.cli import main
from prfaas_gym.scenario import load_scenario

REPO = Path(__file__).resolve().parents[2]
CONFIGS = sorted((REPO / "agents" / "configs").glob("*.yaml"))


def test_registry_holds_the_required_worlds():
    ids = set(TASKS)
    for required in ("prfaas/paper-steady-v1", "prfaas/bursty-v1", "prfaas/mooncake-v1",
                     "prfaas/mooncake-stress-v1", "prfaas/diurnal-v1", "prfaas/three-region-v1",
                     "prfaas/link-outage-v1"):
        assert required in ids
    for t in list_tasks():
        assert t.id.startswith("prfaas/") and t.id.rsplit("-v", 1)[1].isdigit()
        load_scenario(t.scenario)  # every task's scenario loads
    assert get_task("prfaas/diurnal-v1").bound_roles == "any"
    assert get_task("prfaas/bursty-v1").bound_roles == "initial"
    with pytest.raises(ValueError, match="unknown task"):
        get_task("prfaas/nope-v1")


def test_seed_splits_are_disjoint():
    for t in list_tasks():
        s = t.seeds
        assert not (set(s.train) & set(s.validation) or set(s.train) & set(s.test)
                    or set(s.validation) & set(s.test))
    with pytest.raises(ValueError, match="disjoint"):
        SeedSplits(train=(1, 2), validation=(3,), test=(2,))


def _config_seeds(cfg: dict) -> set[int]:
    """Every seed a training config names: its train, validation and test ranges and any
    other integer under a key that mentions 'seed'."""
    seeds: set[int] = set()
    start, count = cfg.get("train_seed_start", 0), cfg.get("train_seed_count", 100)
    seeds |= set(range(start, start + count))
    start, count = cfg.get("val_seed_start", 500), cfg.get("val_seeds", 3)
    seeds |= set(range(start, start + count))
    start, count = cfg.get("test_seed_offset", 1000), cfg.get("test_seeds", 10)
    seeds |= set(range(start, start + count))
    for k, v in cfg.items():
        if "seed" in k and isinstance(v, int) and not isinstance(v, bool) and not k.endswith(("_count", "_seeds")):
            seeds.add(v)
        if "seed" in k and isinstance(v, list):
            seeds |= {x for x in v if isinstance(x, int)}
    return seeds


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_no_training_config_uses_a_test_seed(path):
    cfg = yaml.safe_load(path.read_text()) or {}
    assert not _config_seeds(cfg) & all_test_seeds(), path.name


def test_shipped_policies_never_trained_on_test_seeds():
    from prfaas_gym.policies.trained import TRAINED_DIR

    for meta_path in TRAINED_DIR.glob("*/metadata.json"):
        meta = json.loads(meta_path.read_text())
        lo, hi = meta["train_seeds"]
        used = set(range(lo, hi + 1)) | set(meta.get("val_seeds", []))
        assert not used & all_test_seeds(), meta_path.parent.name


def test_training_code_refuses_test_seeds():
    from prfaas_gym.training.config import TrainSettings

    check_training_seeds([0, 1, 2])
    with pytest.raises(ValueError, match="benchmark test"):
        check_training_seeds([get_task("prfaas/bursty-v1").seeds.test[0]])
    bad = TrainSettings(train_seed_start=get_task("prfaas/bursty-v1").seeds.test[0], train_seed_count=5,
                        val_seed_start=500, test_seed_offset=1000)
    with pytest.raises(ValueError, match="benchmark test"):
        bad.check_seeds()


def test_list_json_shape(capsys):
    assert main(["benchmark", "list", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [t["id"] for t in doc["tasks"]] == list(TASKS)
    for t in doc["tasks"]:
        assert set(t) == {"id", "scenario", "env_id", "metric", "seeds"}
        assert set(t["seeds"]) == {"train", "validation", "test"}
        assert t["seeds"]["test"] == list(TASKS[t["id"]].seeds.test)


def test_env_kwargs_make_the_tasks_world():
    import gymnasium as gym

    import prfaas_gym  # noqa: F401  (registers the env ids)

    t = get_task("prfaas/link-outage-v1")
    env = gym.make(t.env_id, **{**t.env_kwargs(), "n_requests": 30})
    env.reset(seed=t.seeds.train[0])
    assert env.unwrapped.scenario.name == "link-outage"
    env.close()
