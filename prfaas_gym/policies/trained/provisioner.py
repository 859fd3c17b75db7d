"""A trained ``prfaas/Provisioning-v1`` policy as a plain simulator Provisioner.

Every ``interval_s`` (from t = 0, as the env acts at reset) the provisioner builds exactly the
observation ``prfaas/Provisioning-v1`` shows its agent
(:meth:`~prfaas_gym.env.control.ControlEnvBase._observe`): a
:class:`~prfaas_gym.env.snapshot.ClusterSnapshot` of the simulator (through the
:class:`~prfaas_gym.env.snapshot.SnapshotView` staleness/noise it was trained with) and the
:class:`~prfaas_gym.env.observation.WindowStats` of the last interval (arrivals, prompt
lengths, requests that ended good / missed / rejected, the router's threshold), encodes it
with :func:`~prfaas_gym.env.observation.encode_control_obs`, normalises it with the training
statistics, runs the policy deterministically with the env's action mask and turns the
action (per PD cluster: one prefill instance fewer / keep / one more) into target prefill
counts, as ``ControlEnvBase._apply_provision`` does. ``tests/agents`` checks that env + policy
and simulator + provisioner give identical summaries on a seed.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any

import numpy as np

from prfaas_gym.env.control import provision_masks, reference_rps, window_stats
from prfaas_gym.env.observation import control_feature_names, encode_control_obs
from prfaas_gym.env.rewards import Outcome, tally
from prfaas_gym.env.snapshot import SLOT_REJECT, SnapshotReader, SnapshotView, build_slots

if TYPE_CHECKING:
    from prfaas_gym.policies.trained.router import ObsNormalizer
    from prfaas_gym.sim.simulator import Simulator


class LearnedProvisioner:
    """Re-provisions PD clusters with a trained SB3 policy (see the module docstring).

    Args:
        policy: an SB3 policy with ``predict(obs, deterministic=..., action_masks=...)``.
        interval_s: the env's provisioning interval the policy was trained with.
        threshold_max_tokens, max_instance_slots: the env settings that shape the observation.
        normalizer: observation normalisation, or ``None``.
        maskable: pass the action mask to the policy (MaskablePPO).
        feature_names: the observation layout it was trained on (checked on first use).
        snapshot_staleness_s, snapshot_noise, seed: the metrics view (0, 0: fresh, exact).
        name: shown in comparisons.
    """

    first_tick_s = 0.0  # the env's agent acts at reset (t = 0), then every interval

    def __init__(self, policy: Any, *, interval_s: float, threshold_max_tokens: float,
                 max_instance_slots: int = 16, normalizer: "ObsNormalizer | None" = None,
                 maskable: bool = True, feature_names: list[str] | None = None,
                 snapshot_staleness_s: float = 0.0, snapshot_noise: float = 0.0, seed: int = 0,
                 name: str = "trained") -> None:
        if not interval_s > 0:
            raise ValueError(f"{name}: interval_s must be > 0")
        self.policy = policy
        self.interval_s = float(interval_s)
        self.threshold_max_tokens = float(threshold_max_tokens)
        self.max_instance_slots = int(max_instance_slots)
        self.normalizer = normalizer
        self.maskable = bool(maskable)
        self.feature_names = list(feature_names) if feature_names else None
        self.snapshot_staleness_s = float(snapshot_staleness_s)
        self.snapshot_noise = float(snapshot_noise)
        self.seed = int(seed)
        self.name = name
        self._sim_ref: Any = None

    # ------------------------------------------------------------------ binding
    def _bind(self, sim: "Simulator") -> None:
        slots = tuple(s for s in build_slots(sim, self.max_instance_slots, False) if s.kind != SLOT_REJECT)
        if self.feature_names is not None:
            now = control_feature_names([s.label for s in slots], [c.name for c in sim.clusters],
                                        [l.name for l in sim.links])
            if now != self.feature_names:
                raise ValueError(f"{self.name}: the scenario's control observation {now[:3]}... differs from "
                                 f"the trained one {self.feature_names[:3]}...; retrain it (docs/learned_agents.md)")
        self._reader = SnapshotReader(sim, slots)
        self._view = SnapshotView(self.snapshot_staleness_s, self.snapshot_noise,
                                  np.random.default_rng([self.seed, 0x5EED]))
        self._ref_rps = reference_rps(sim)
        self._ended: list = []
        self._ended_idx = 0
        sim.on_request_end.append(self._ended.append)
        self._arrived = 0
        self._win_start = sim.env.now
        self._sim_ref = weakref.ref(sim)

    # ------------------------------------------------------------------ observation
    def observe(self, sim: "Simulator") -> np.ndarray:
        """The raw observation the env would show now (advances the window)."""
        if self._sim_ref is None or self._sim_ref() is not sim:
            self._bind(sim)
        now = sim.env.now
        o = Outcome()
        sc = sim.scenario
        self._ended_idx = tally(self._ended, self._ended_idx, sc.ttft_slo_s, sc.tpot_slo_s, o, latency=False)
        t = float(getattr(sim.router, "threshold_tokens", sc.default_threshold_tokens))
        win, self._arrived = window_stats(sim.arrived, self._arrived, now, now - self._win_start, t,
                                          self._ref_rps, self.threshold_max_tokens, o)
        self._win_start = now
        return encode_control_obs(self._view(self._reader.read()), win)

    # ------------------------------------------------------------------ decision
    def provision(self, view: "Simulator") -> dict[int, int] | None:
        obs = self.observe(view)
        masks = provision_masks(view, view.pd_clusters)
        x = self.normalizer(obs) if self.normalizer is not None else obs
        if self.maskable:
            a, _ = self.policy.predict(x, deterministic=True, action_masks=np.concatenate(masks))
        else:
            a, _ = self.policy.predict(x, deterministic=True)
        targets = {}
        for c, k, m in zip(view.pd_clusters, np.asarray(a).reshape(-1).tolist(), masks):
            k = int(k)
            if 0 <= k < 3 and m[k] and k != 1:
                targets[c] = view.clusters[c].prefill_count() + k - 1
        return targets or None
