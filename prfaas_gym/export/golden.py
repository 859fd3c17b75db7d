"""``golden.json``: reference cases for re-implementing a bundle's router in another language.

Each case is one ``POST /route`` body and every intermediate the reference computes from it:
the raw observation (:func:`~prfaas_gym.env.observation.encode_routing_obs`, float64), the
action mask, the normalised observation (float32, what the MLP sees), the logits (float32)
and the action, plus the service's answer. A Go or Rust encoder passes when it reproduces the
observation and mask exactly (they are float64 arithmetic on the body's numbers, in the
documented order), the normalised observation and logits to float32 rounding (``1e-5``
relative), and the action exactly.

The bodies come from the bundle's own scenario: the bundle routes a short simulated run
(so queues, waits, pulls and links are loaded as in service), every decision's snapshot is
recorded, and 50 cases are kept: one per distinct action and evenly spaced ones over the run;
18 variants of six recorded states (the chosen slot closed; two random open/closed patterns
of the slots, seeded), which exercise the mask and the order of the remaining logits; and two
variants of the first (unknown home cluster, a known output length).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import numpy as np

from prfaas_gym.env.observation import encode_routing_obs
from prfaas_gym.export.bundle import BundleRouter, RouterBundle, _masked_argmax, route_body

if TYPE_CHECKING:
    from prfaas_gym.scenario import Scenario

GOLDEN = "golden.json"
GOLDEN_FORMAT = "prfaas-router-golden/1"
GOLDEN_CASES = 50
GOLDEN_RUN_REQUESTS = 400
LOGIT_RTOL = 1e-5
N_VARIANT_BASES = 6


class _Recorder(BundleRouter):
    """The bundle routing in simulation, keeping each decision's snapshot as a route body."""

    def __init__(self, bundle: RouterBundle) -> None:
        super().__init__(bundle)
        self.bodies: list[dict[str, Any]] = []

    def route(self, req: Any, view: Any) -> Any:
        decision = super().route(req, view)
        reader = self._reader
        self.bodies.append(route_body(reader.read(), reader.request(req), [c.name for c in view.clusters]))
        return decision


def golden_case(bundle: RouterBundle, body: dict[str, Any]) -> dict[str, Any]:
    """Every intermediate of the reference decision for one route body."""
    from prfaas_gym.export.service import parse_route_body

    snap, req = parse_route_body(bundle, body)
    obs = encode_routing_obs(snap, req)
    mask = bundle.mask(snap, req)
    norm = bundle.normalizer(obs) if bundle.normalizer is not None else np.asarray(obs, dtype=np.float32)
    logits = bundle.policy_logits(norm)
    action = _masked_argmax(logits, mask)
    return {"body": body, "observation": [float(x) for x in obs], "mask": [bool(m) for m in mask],
            "normalized_observation": [float(x) for x in norm], "logits": [float(x) for x in logits],
            "action": action, "answer": bundle.decision(action).as_dict()}


def golden_cases(bundle: RouterBundle, scenario: "Scenario", n_cases: int = GOLDEN_CASES,
                 n_requests: int = GOLDEN_RUN_REQUESTS) -> dict[str, Any]:
    """The ``golden.json`` document of ``bundle`` (see the module docstring)."""
    from prfaas_gym.api import build_simulator

    rec = _Recorder(bundle)
    build_simulator(scenario, rec, n_requests=n_requests).run()
    cases = [golden_case(bundle, b) for b in rec.bodies]
    # variants of six states spread over the run: the chosen slot closed (an instance down or
    # full), and two random open/closed patterns: they exercise the mask and the order of the
    # remaining logits, which a loaded run rarely reaches
    rng = np.random.default_rng(0)
    n_slots = len(bundle.slots) - 1
    variants = []
    for i in np.linspace(0, len(cases) - 1, N_VARIANT_BASES).round().astype(int):
        base = cases[int(i)]
        patterns = [[0.0 if k == base["action"] else v for k, v in enumerate(base["body"]["snapshot"]["slot_open"])]]
        patterns += [[float(v) for v in rng.random(n_slots) < 0.5] for _ in range(2)]
        for open_ in patterns:
            body = json.loads(json.dumps(base["body"]))
            body["snapshot"]["slot_open"] = open_
            variants.append(golden_case(bundle, body))
    n_natural = max(n_cases - 2 - len(variants), 1)
    chosen: list[int] = []
    for a in sorted({c["action"] for c in cases}):
        chosen.append(next(i for i, c in enumerate(cases) if c["action"] == a))
    for i in np.linspace(0, len(cases) - 1, 2 * n_natural).round().astype(int):
        if len(chosen) < n_natural and int(i) not in chosen:
            chosen.append(int(i))
    picked = [cases[i] for i in sorted(chosen)] + variants
    first = picked[0]["body"]
    unknown_home = {"snapshot": first["snapshot"], "request": {**first["request"], "home_cluster": -1}}
    known_output = {"snapshot": first["snapshot"], "request": {**first["request"], "output_tokens": 256}}
    picked += [golden_case(bundle, unknown_home), golden_case(bundle, known_output)]
    return {"format": GOLDEN_FORMAT, "bundle": bundle.name, "scenario": scenario.name,
            "tolerance": {"observation": 0.0, "mask": 0, "normalized_observation_rtol": LOGIT_RTOL,
                          "logits_rtol": LOGIT_RTOL, "action": 0},
            "feature_names": bundle.feature_names, "actions": bundle.slot_labels, "cases": picked}


def check_golden(decide: Any, doc: dict[str, Any]) -> list[str]:
    """Mismatches of an implementation against a golden document (empty: it agrees).

    ``decide(body) -> dict`` returns any of ``observation``, ``mask``, ``normalized_observation``,
    ``logits`` (compared within the document's tolerances) and ``action`` (exact)."""
    tol = doc["tolerance"]
    bad = []
    for i, case in enumerate(doc["cases"]):
        got = decide(case["body"])
        for key in ("observation", "mask", "normalized_observation", "logits"):
            if key not in got:
                continue
            want, have = np.asarray(case[key], dtype=float), np.asarray(got[key], dtype=float)
            rtol = tol.get(f"{key}_rtol", 0.0)
            if want.shape != have.shape or not np.allclose(have, want, rtol=rtol, atol=rtol):
                bad.append(f"case {i}: {key} differs")
        if got.get("action") is None or int(got["action"]) != case["action"]:
            bad.append(f"case {i}: action {got.get('action')} != {case['action']}")
    return bad
