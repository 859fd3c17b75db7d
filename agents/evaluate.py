"""Evaluate a trained router against heuristics on held-out seeds (paired, 95% intervals).

Seeds ``seed_offset .. seed_offset + seeds - 1`` must not overlap the training seeds
recorded in the policy's ``metadata.json`` (checked). Prints a Markdown table; ``--json``
writes the full report.

    python agents/evaluate.py --policy trained:routing-bursty --scenario bursty_fluctuating \
        --seeds 10 --seed-offset 1000 --json runs/eval-routing-bursty.json
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from prfaas_gym.training.config import apply_overrides  # noqa: F401  (YAML via --config)


@dataclass
class EvalSettings:
    """Evaluation settings.

    Attributes:
        policy: ``trained:NAME`` or a policy directory.
        scenario: scenario name or path (default: the policy's training scenario).
        heuristics: comma-separated heuristic policies to compare with.
        seeds: number of held-out seeds; seed_offset: the first one.
        n_requests: requests per run (default: the scenario's, as `prfaas-gym compare`).
        rate_rps: arrival-rate override (e.g. 90% of capacity).
        json: write the report here.
    """

    policy: str = "trained:routing-bursty"
    scenario: str | None = None
    heuristics: str = "mooncake-conductor,least-loaded,prfaas-adaptive,prfaas-threshold"
    seeds: int = 10
    seed_offset: int = 1000
    n_requests: int | None = None
    rate_rps: float | None = None
    json: str | None = None


def main(argv: list[str] | None = None) -> dict:
    import argparse

    import yaml

    from prfaas_gym.policies.trained import load_metadata
    from prfaas_gym.training.report import held_out_report, markdown_table

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", type=Path)
    for name, default in EvalSettings().__dict__.items():
        p.add_argument("--" + name.replace("_", "-"), dest=name, default=None, help=f"(default: {default!r})")
    args = p.parse_args(argv)
    s = EvalSettings()
    if args.config:
        apply_overrides(s, yaml.safe_load(args.config.read_text()) or {}, str(args.config))
    for name, val in vars(args).items():
        if name != "config" and val is not None:
            cur = getattr(EvalSettings(), name)
            setattr(s, name, int(val) if isinstance(cur, int) or name in ("seeds", "seed_offset", "n_requests")
                    else float(val) if name == "rate_rps" else val)
    meta = load_metadata(s.policy)
    lo, hi = meta.get("train_seeds", [0, -1])
    if not (s.seed_offset > hi or s.seed_offset + s.seeds - 1 < lo):
        raise SystemExit(f"seeds {s.seed_offset}..{s.seed_offset + s.seeds - 1} overlap training seeds {lo}..{hi}")
    kw = meta.get("env_kwargs", {})
    scenario = s.scenario or kw.get("scenario")
    n_req = s.n_requests  # None: the scenario's own run length (as `prfaas-gym compare`)
    heur = [h.strip() for h in s.heuristics.split(",") if h.strip()]
    report = held_out_report(scenario, s.policy, heur, seeds=s.seeds, seed_offset=s.seed_offset,
                             n_requests=n_req, rate_rps=s.rate_rps)
    print(markdown_table(report))
    best = report["best_heuristic"]
    if best:
        r = report["ratios"][best]
        print(f"\n{s.policy} / best heuristic ({best}) goodput: {r['mean']:.3f} "
              f"[{r['ci95'][0]:.3f}, {r['ci95'][1]:.3f}] (paired, {s.seeds} held-out seeds)")
    if s.json:
        Path(s.json).parent.mkdir(parents=True, exist_ok=True)
        Path(s.json).write_text(json.dumps(report, indent=2) + "\n")
    return report


if __name__ == "__main__":
    main()
