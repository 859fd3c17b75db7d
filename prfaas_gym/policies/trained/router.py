"""A trained routing policy as a plain simulator :class:`~prfaas_gym.sim.Router`.

At each arrival the router does exactly what ``prfaas/Routing-v1`` does before its agent
acts: read a :class:`~prfaas_gym.env.snapshot.ClusterSnapshot` and the request's
:class:`~prfaas_gym.env.snapshot.RequestFeatures` (``SnapshotReader``), encode them with
:func:`~prfaas_gym.env.observation.encode_routing_obs`, compute the action mask
(:func:`~prfaas_gym.env.actions.action_mask`), normalise with the training VecNormalize
statistics, then run the policy deterministically and map the slot to a
:class:`~prfaas_gym.sim.RouteDecision` (:func:`~prfaas_gym.env.actions.slot_decision`).
A masked choice falls back to the simulator's threshold rule, as in the env.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any

import numpy as np

from prfaas_gym.env.actions import request_mask, slot_decision
from prfaas_gym.env.observation import encode_routing_obs, routing_feature_names
from prfaas_gym.env.snapshot import SnapshotReader, SnapshotView, build_slots
from prfaas_gym.sim.router import RouteDecision

if TYPE_CHECKING:
    from prfaas_gym.sim.simulator import Simulator
    from prfaas_gym.workload.request import Request


class ObsNormalizer:
    """VecNormalize's observation transform from saved statistics (no VecEnv needed)."""

    def __init__(self, mean: Any, var: Any, clip_obs: float = 10.0, epsilon: float = 1e-8) -> None:
        self.mean = np.asarray(mean, dtype=np.float64)
        self.std = np.sqrt(np.asarray(var, dtype=np.float64) + epsilon)
        self.clip_obs = float(clip_obs)

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        return np.clip((obs - self.mean) / self.std, -self.clip_obs, self.clip_obs).astype(np.float32)

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> "ObsNormalizer | None":
        """From the ``obs_norm.json`` mapping (``None``: no normalisation)."""
        if not d:
            return None
        return cls(d["mean"], d["var"], d.get("clip_obs", 10.0), d.get("epsilon", 1e-8))


class LearnedRouter:
    """Routes with a trained SB3 policy (see the module docstring).

    Args:
        policy: an SB3 policy (``model.policy``) with ``predict(obs, deterministic=...)``;
            MaskablePPO policies also take ``action_masks``.
        slot_labels: the slot layout the policy was trained on (checked on first use).
        normalizer: observation normalisation, or ``None``.
        max_instance_slots, pull_slots, allow_reject: the env's slot-layout settings.
        maskable: pass action masks to the policy.
        name: shown in comparisons.
        feature_names: the observation layout the policy was trained on; checked against
            the current encoder on first use (``None``: only the size is checked by torch).
        oracle_output_len: show the request's true output length (policies trained with
            ``oracle_features=True``, e.g. the v0-era shipped ones); else 0 ("unknown").
        snapshot_staleness_s, snapshot_noise, seed: the metrics view the policy acts on
            (:class:`~prfaas_gym.env.snapshot.SnapshotView`; 0, 0: fresh and exact).
    """

    def __init__(self, policy: Any, slot_labels: list[str], *, normalizer: ObsNormalizer | None = None,
                 max_instance_slots: int = 16, pull_slots: bool = True, allow_reject: bool = True,
                 maskable: bool = True, name: str = "trained",
                 feature_names: list[str] | None = None, oracle_output_len: bool = False,
                 snapshot_staleness_s: float = 0.0, snapshot_noise: float = 0.0, seed: int = 0) -> None:
        self.policy = policy
        self.slot_labels = list(slot_labels)
        self.normalizer = normalizer
        self.max_instance_slots = int(max_instance_slots)
        self.pull_slots = bool(pull_slots)
        self.allow_reject = bool(allow_reject)
        self.maskable = bool(maskable)
        self.name = name
        self.feature_names = list(feature_names) if feature_names else None
        self.fallbacks = 0
        self.oracle_output_len = bool(oracle_output_len)
        self.snapshot_staleness_s = float(snapshot_staleness_s)
        self.snapshot_noise = float(snapshot_noise)
        self.seed = int(seed)
        self._view = SnapshotView(self.snapshot_staleness_s, self.snapshot_noise)
        self._sim_ref: Any = None
        self._reader: SnapshotReader | None = None
        self._slots: tuple = ()
        self._decisions: list[RouteDecision] = []

    def _bind(self, sim: "Simulator") -> SnapshotReader:
        slots = build_slots(sim, self.max_instance_slots, self.pull_slots)
        labels = [s.label for s in slots]
        if labels != self.slot_labels:
            raise ValueError(
                f"{self.name}: scenario slot layout {labels} differs from the trained one {self.slot_labels}"
            )
        if self.feature_names is not None:
            now = routing_feature_names([s.label for s in slots if s.kind != "reject"],
                                        [c.name for c in sim.clusters], [l.name for l in sim.links])
            if now != self.feature_names:
                extra = sorted(set(now) - set(self.feature_names))
                gone = sorted(set(self.feature_names) - set(now))
                raise ValueError(
                    f"{self.name}: the routing observation changed since this policy was trained "
                    f"(new: {extra[:4]}, removed: {gone[:4]}); retrain it (docs/learned_agents.md)"
                )
        self._slots = slots
        self._decisions = [slot_decision(s) for s in slots]
        self._reader = SnapshotReader(sim, slots, self.oracle_output_len)
        self._view = SnapshotView(self.snapshot_staleness_s, self.snapshot_noise,
                                  np.random.default_rng([self.seed, 0x5EED]))
        self._sim_ref = weakref.ref(sim)
        return self._reader

    def observe(self, req: "Request", sim: "Simulator") -> tuple[np.ndarray, np.ndarray]:
        """The (raw) observation and action mask the env would show for ``req`` now."""
        reader = self._reader
        if reader is None or self._sim_ref is None or self._sim_ref() is not sim:
            reader = self._bind(sim)
        snap = reader.read()
        feats = reader.request(req)
        mask = np.array(request_mask(self._slots, snap, feats, self.allow_reject, reader.slot_reach), dtype=bool)
        view = self._view
        return encode_routing_obs(view(snap) if view.active else snap, feats), mask

    def act(self, obs: np.ndarray, mask: np.ndarray) -> int:
        """The deterministic action for a raw observation."""
        x = self.normalizer(obs) if self.normalizer is not None else obs
        if self.maskable:
            a, _ = self.policy.predict(x, deterministic=True, action_masks=mask)
        else:
            a, _ = self.policy.predict(x, deterministic=True)
        return int(a)

    def route(self, req: "Request", view: "Simulator") -> RouteDecision:
        obs, mask = self.observe(req, view)
        a = self.act(obs, mask)
        if not (0 <= a < len(mask) and mask[a]):
            self.fallbacks += 1
            return view.fallback_router.route(req, view)
        return self._decisions[a]
