"""Shared core of the periodic-control envs (Threshold, Provisioning, DualTimescale).

Between steps the simulator routes every request itself with the paper's threshold rule
(:class:`~prfaas_gym.sim.ThresholdRouter`); a step sets the controls, runs one interval of
simulated time and observes the cluster plus what happened in the interval.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from gymnasium import spaces

from prfaas_gym.env.base import MIN_INTERVAL_S, PrfaasEnvBase, check_number
from prfaas_gym.env.observation import WindowStats, control_feature_names, control_obs_size, encode_control_obs
from prfaas_gym.env.rewards import Outcome
from prfaas_gym.env.snapshot import SLOT_REJECT, SnapshotReader, build_slots
from prfaas_gym.sim import ThresholdRouter
from prfaas_gym.sim.instance import FAILED, PREFILL

MIN_THRESHOLD_TOKENS = 256.0


def threshold_from_unit(u: float, max_tokens: float) -> float:
    """Map ``u`` in [-1, 1] to a threshold, log-uniformly between 256 and ``max_tokens``."""
    u = -1.0 if u < -1.0 else (1.0 if u > 1.0 else u)
    lo, hi = math.log(MIN_THRESHOLD_TOKENS), math.log(max_tokens)
    return math.exp(lo + (u + 1.0) * 0.5 * (hi - lo))


def threshold_bins(n_bins: int, max_tokens: float) -> list[float]:
    """Thresholds of the discrete bins: bin 0 is 0 tokens (offload everything that can be),
    bins 1..n-1 are log-uniform from 256 to ``max_tokens``."""
    if n_bins < 2:
        raise ValueError("threshold_bins must be >= 2")
    if n_bins == 2:
        return [0.0, float(max_tokens)]
    return [0.0] + [threshold_from_unit(-1.0 + 2.0 * i / (n_bins - 2), max_tokens) for i in range(n_bins - 1)]


def as_choice(x: Any, n: int) -> int | None:
    """``x`` as an index in ``range(n)``, or ``None`` (NaN, fractional, out of range)."""
    try:
        f = float(x)
        i = int(f)
    except (TypeError, ValueError, OverflowError):
        return None
    return i if i == f and 0 <= i < n else None


def cap_from_unit(u: float) -> float:
    """Map ``u`` in [-1, 1] to a bandwidth-cap fraction of nominal in [0.05, 1]."""
    u = -1.0 if u < -1.0 else (1.0 if u > 1.0 else u)
    return 0.05 + 0.95 * (u + 1.0) * 0.5


def reference_rps(sim: Any) -> float:
    """The rate that encodes as 0.5: requests known up front over their arrival span (closed-loop
    turns have no arrival time yet)."""
    reqs = sim.requests
    span = max((r.arrival_s for r in reqs if r.arrival_s == r.arrival_s), default=0.0)
    return len(reqs) / span if span > 0 else 1.0


def provision_masks(sim: Any, pd_clusters: list[int]) -> list[np.ndarray]:
    """Per PD cluster, which of fewer / keep / more prefill instances is valid now: each role
    keeps at least one (non-failed) instance."""
    out = []
    for c in pd_clusters:
        cl = sim.clusters[c] if sim is not None else None
        if cl is None:
            out.append(np.ones(3, dtype=np.int8))
            continue
        pf = cl.prefill_count()
        dec = sum(1 for i in cl.instances if i.state != FAILED and i.target_role != PREFILL)
        out.append(np.array([pf >= 2, 1, dec >= 2], dtype=np.int8))
    return out


def window_stats(arrived: Any, start: int, now: float, span_s: float, threshold: float, ref_rps: float,
                 threshold_max: float, o: Outcome) -> tuple[WindowStats, int]:
    """The last interval's :class:`WindowStats` from the arrivals ``arrived[start:]`` up to
    ``now`` and the requests that ended in it (``o``); returns it and the next start index."""
    k, n = start, len(arrived)
    cnt = long_ = 0
    tokens = 0.0
    while k < n and arrived[k].arrival_s <= now:
        r = arrived[k]
        cnt += 1
        tokens += r.input_tokens
        if r.input_tokens - r.cached_tokens > threshold:
            long_ += 1
        k += 1
    ended = o.good + o.missed + o.rejected
    return WindowStats(
        arrival_rps=cnt / span_s if span_s > 0 else 0.0,
        ref_rps=ref_rps,
        mean_input_tokens=tokens / cnt if cnt else 0.0,
        long_frac=long_ / cnt if cnt else 0.0,
        good_frac=o.good / ended if ended else 0.0,
        reject_frac=o.rejected / ended if ended else 0.0,
        threshold_frac=threshold / threshold_max,
    ), k


class ControlEnvBase(PrfaasEnvBase):
    """Common base of the periodic-control envs (not registered itself)."""

    def __init__(
        self,
        scenario: str | Path = "paper/prfaas_pd",
        *,
        interval_s: float | None = None,
        reward: str = "goodput",
        n_requests: int | None = None,
        max_sim_time_s: float | None = None,
        max_steps: int | None = None,
        data_dir: str | Path | None = None,
        env_config: dict[str, Any] | None = None,
        overrides: dict[str, Any] | None = None,
        invalid_action: str = "reject",
        credit: str = "end",
        snapshot_staleness_s: float = 0.0,
        snapshot_noise: float = 0.0,
        render_mode: str | None = None,
        interval_key: str = "control_interval_s",
    ) -> None:
        super().__init__(scenario, reward=reward, n_requests=n_requests, max_sim_time_s=max_sim_time_s,
                         max_steps=max_steps, data_dir=data_dir, env_config=env_config, overrides=overrides,
                         invalid_action=invalid_action, credit=credit,
                         snapshot_staleness_s=snapshot_staleness_s, snapshot_noise=snapshot_noise,
                         render_mode=render_mode)
        if interval_s is not None:
            self.interval_s = check_number("interval_s", interval_s, MIN_INTERVAL_S)
        else:
            self.interval_s = float(self.config[interval_key])
        self.threshold_max_tokens = float(self.config["threshold_max_tokens"])
        lay = self._layout_sim
        self.slots = tuple(s for s in build_slots(lay, int(self.config["max_instance_slots"]), False)
                           if s.kind != SLOT_REJECT)
        self.pd_clusters = list(lay.pd_clusters)
        names = ([s.label for s in self.slots], [c.name for c in lay.clusters], [l.name for l in lay.links])
        self.feature_names = control_feature_names(*names)
        n = control_obs_size(len(self.slots), len(lay.clusters), len(lay.links))
        self.observation_space = spaces.Box(0.0, 1.0, (n,), np.float32)
        self._layout_sim = None
        self.router: ThresholdRouter | None = None

    # ------------------------------------------------------------------ episode
    def _reset_control(self, seed: int | None, options: dict[str, Any] | None = None
                       ) -> tuple[np.ndarray, dict[str, Any]]:
        self.router = ThresholdRouter(self.scenario.default_threshold_tokens)
        sim = self._reset_sim(seed, options, router=self.router)
        self._reader = SnapshotReader(sim, self.slots)
        self._ref_rps = reference_rps(sim)
        self._arrived = 0
        self._win_start = 0.0
        obs = self._observe(Outcome())
        info = {"sim_time_s": sim.env.now, "dt_s": 0.0, "threshold_tokens": self.router.threshold_tokens}
        self._add_mask(info)
        return obs, info

    def _check_running(self) -> None:
        """``step()`` before ``reset()`` or after the episode ended raises (as Routing does)."""
        if self.sim is None or self._ended:
            raise RuntimeError("step() after the episode ended (or before reset()): call reset()")

    def _run_interval(self, invalid: int = 0) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Run one interval; ``invalid`` = invalid parts of the action just applied."""
        sim = self.sim
        self._invalid += invalid
        target = min(sim.env.now + self.interval_s, self.max_sim_time_s)
        sim.run_until(target)
        self._steps += 1
        terminated = sim.done
        truncated = not terminated and self._time_or_step_cap()
        o, dt, rids = self._outcome()
        o.invalid = invalid
        obs = self._observe(o)
        info: dict[str, Any] = {
            "threshold_tokens": self.router.threshold_tokens,
            "prefill_instances": [sim.clusters[c].prefill_count() for c in self.pd_clusters],
            "invalid_action": invalid > 0,
        }
        self._add_mask(info)
        r, info = self._finish_step(o, dt, rids, terminated, truncated, info)
        return obs, r, terminated, truncated, info

    MASKED = False  # envs with discrete actions set this and implement action_mask()

    def _add_mask(self, info: dict[str, Any]) -> None:
        """Put the action mask in ``info`` (discrete-action envs)."""
        if self.MASKED:
            info["action_mask"] = self.action_mask()

    def action_masks(self) -> np.ndarray:
        """Valid actions, flat ``int8`` 0/1 over the sub-actions (sb3-contrib's MaskablePPO
        protocol for ``MultiDiscrete``); ``info["action_mask"]`` holds the same per sub-action."""
        return np.concatenate(self.action_mask())

    def action_mask(self) -> tuple[np.ndarray, ...]:
        """Valid choices per sub-action (a tuple of ``int8`` arrays, the form
        ``MultiDiscrete.sample(mask=...)`` takes)."""
        raise NotImplementedError(f"{type(self).__name__} has a continuous action space: nothing is masked")

    def _provision_masks(self) -> list[np.ndarray]:
        """Per PD cluster, which of fewer / keep / more prefill instances is valid now: each
        role keeps at least one (non-failed) instance."""
        return provision_masks(self.sim, self.pd_clusters)

    def _apply_provision(self, action: Any, masks: list[np.ndarray]) -> int:
        """Apply the provisioning part (one 0/1/2 per PD cluster); invalid entries (not an
        integer in 0..2, or masked) change nothing. Returns how many were invalid."""
        sim = self.sim
        invalid = 0
        for c, x, m in zip(self.pd_clusters, action, masks):
            k = as_choice(x, 3)
            if k is None or not m[k]:
                invalid += 1
                continue
            if k != 1:
                sim.set_prefill_count(c, sim.clusters[c].prefill_count() + k - 1)
        return invalid

    def _flat_action(self, action: Any) -> np.ndarray:
        """``action`` as a flat array of the action space's length, or ``ValueError``."""
        try:
            a = np.asarray(action, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"action: expected {self.action_space}, got {action!r}") from exc
        n = int(np.prod(self.action_space.shape))
        if a.size != n:
            raise ValueError(f"action: expected {n} value(s) for {self.action_space}, got {a.size}")
        return a

    def _observe(self, o: Outcome) -> np.ndarray:
        now = self.sim.env.now
        win, self._arrived = window_stats(self.sim.arrived, self._arrived, now, now - self._win_start,
                                          self.router.threshold_tokens, self._ref_rps,
                                          self.threshold_max_tokens, o)
        self._win_start = now
        return encode_control_obs(self._view(self._reader.read()), win)

    # ------------------------------------------------------------------ controls
    def _set_threshold(self, tokens: float) -> None:
        self.router.threshold_tokens = float(tokens)

    def _set_cap_fraction(self, frac: float) -> None:
        for link in self.sim.links:
            link.set_cap(frac * link.nominal_bytes_s)

