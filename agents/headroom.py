"""Where does a policy lose goodput? Rerun it with one resource relaxed at a time.

For a scenario and a policy (default: the best heuristic on bursty_fluctuating), each variant
overrides the scenario (a faster link, no bandwidth dips, bigger decode batches, one more
PrfaaS instance, ...) and reruns the policy on the same seeds; the paired goodput ratio
variant / original says how much that resource limits the policy, i.e. the most a router
that worked around it could gain. Variants are derived from the scenario's links and
clusters; ``--variant NAME=key:value,key:value`` adds one (dotted scenario keys, as in
``load_scenario(overrides=...)``).

    python agents/headroom.py --scenario bursty_fluctuating --policy mooncake-conductor \
        --seeds 10 --seed-offset 1000
"""

from __future__ import annotations

import argparse
import json
import sys

import yaml


def default_variants(scenario) -> dict[str, dict]:
    """One relaxation per link and per cluster kind, named for a reader."""
    out: dict[str, dict] = {}
    for i, link in enumerate(scenario.links):
        if link.fluctuation is not None:
            out[f"link {link.name}: no dips"] = {f"links[{i}].fluctuation.dip_probability": 0.0}
        gbps = link.profile.bandwidth_bytes_s * 8 / 1e9
        out[f"link {link.name}: 100x bandwidth, no dips"] = {
            f"links[{i}].bandwidth_gbps": gbps * 100,
            f"links[{i}].per_connection_gbps": gbps * 100,
            **({f"links[{i}].fluctuation.dip_probability": 0.0} if link.fluctuation is not None else {}),
        }
    for i, c in enumerate(scenario.clusters):
        if c.kind == "pd":
            out[f"{c.name}: 10x decode batch"] = {f"clusters[{i}].decode.max_batch": c.decode_max_batch * 10}
            if c.prefill_instances + 1 < c.instances:
                out[f"{c.name}: one instance moved decode -> prefill"] = {
                    f"clusters[{i}].prefill_instances": c.prefill_instances + 1}
            if c.prefill_instances > 1:
                out[f"{c.name}: one instance moved prefill -> decode"] = {
                    f"clusters[{i}].prefill_instances": c.prefill_instances - 1}
        else:
            out[f"{c.name}: +1 instance"] = {f"clusters[{i}].instances": c.instances + 1}
    return out


def parse_variant(text: str) -> tuple[str, dict]:
    """``NAME=key:value,key:value`` -> ``(NAME, {key: value})`` (values parsed as YAML)."""
    name, sep, body = text.partition("=")
    if not sep or not name.strip() or not body.strip():
        raise ValueError(f"--variant {text!r}: expected NAME=key:value[,key:value]")
    overrides = {}
    for part in body.split(","):
        key, sep, value = part.partition(":")
        if not sep or not key.strip():
            raise ValueError(f"--variant {text!r}: {part!r} is not key:value")
        overrides[key.strip()] = yaml.safe_load(value)
    return name.strip(), overrides


def main(argv: list[str] | None = None) -> dict:
    from prfaas_gym.evaluation import mean_ci, run_policy
    from prfaas_gym.scenario import load_scenario

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scenario", default="bursty_fluctuating")
    p.add_argument("--policy", default="mooncake-conductor")
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--seed-offset", type=int, default=1000)
    p.add_argument("--requests", type=int, default=None)
    p.add_argument("--variant", action="append", default=[], help="NAME=key:value[,key:value] (repeatable)")
    p.add_argument("--no-defaults", action="store_true", help="only the --variant ones")
    p.add_argument("--json", default=None, metavar="FILE", help="also write the report here")
    args = p.parse_args(argv)
    if args.seeds < 1:
        raise ValueError("--seeds: must be >= 1")

    base = load_scenario(args.scenario)
    variants = {} if args.no_defaults else default_variants(base)
    variants.update(parse_variant(v) for v in args.variant)
    if not variants:
        raise ValueError("no variants: drop --no-defaults or give --variant")
    scenarios = {name: load_scenario(args.scenario, overrides=ov) for name, ov in variants.items()}
    seeds = list(range(args.seed_offset, args.seed_offset + args.seeds))

    def goodput(sc, seed: int) -> float:
        return run_policy(sc, args.policy, seed, n_requests=args.requests)[0]["goodput_rps"]

    original = [goodput(base, s) for s in seeds]
    rows = {}
    for name, sc in scenarios.items():
        ratios = [goodput(sc, s) / g for s, g in zip(seeds, original)]
        rows[name] = {"overrides": variants[name], "ratio": mean_ci(ratios), "per_seed": ratios}
    report = {"scenario": base.name, "policy": args.policy, "seeds": seeds,
              "goodput_rps": mean_ci(original), "variants": rows}
    print(f"{base.name}, {args.policy}, seeds {seeds[0]}..{seeds[-1]}: goodput variant / original (paired)")
    print("| variant | ratio [95% CI] | per-seed range |\n|---|---|---|")
    for name, r in rows.items():
        lo, hi = r["ratio"]["ci95"]
        print(f"| {name} | {r['ratio']['mean']:.3f} [{lo:.3f}, {hi:.3f}] | "
              f"{min(r['per_seed']):.3f}-{max(r['per_seed']):.3f} |")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(report, fh, indent=1)
    return report


if __name__ == "__main__":
    try:
        main()
    except (ValueError, FileNotFoundError, KeyError) as exc:
        print(f"headroom: error: {str(exc).splitlines()[0]}", file=sys.stderr)
        sys.exit(2)
