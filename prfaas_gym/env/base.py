"""Shared plumbing of the prfaas envs: scenario loading, seeding, reward accounting, info.

Not an env by itself. Subclasses build their spaces in ``__init__`` and drive
``self.sim`` (an :class:`~prfaas_gym.env.driver.EnvSimulator`, rebuilt on every ``reset``).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from prfaas_gym.env.driver import EnvSimulator
from prfaas_gym.env.render import render_rgb, render_text
from prfaas_gym.env.rewards import LatencyIntegrator, Outcome, RewardConfig, reward_parts, tally
from prfaas_gym.env.snapshot import SnapshotView
from prfaas_gym.scenario import load_scenario

# scenario ``env:`` keys understood by the envs (all optional)
ENV_KEY_DEFAULTS: dict[str, Any] = {
    "control_interval_s": 10.0,  # Threshold / DualTimescale step
    "provision_interval_s": 120.0,  # Provisioning step; DualTimescale provisioning period
    "max_instance_slots": 16,  # Routing: per-instance slots up to this many instances per PD cluster
    "threshold_max_tokens": 131072,  # Threshold: action 1.0 (top bin) maps to this
    "threshold_bins": 16,  # DualTimescale: threshold bins
    "reject_penalty": 4.0,
    "usd_per_request": 0.05,
    "egress_usd_per_gb": 0.02,
    "shaping_weight": 0.1,
    "invalid_action_penalty": 1.0,  # invalid_action="penalize": reward per invalid action
}

INVALID_ACTION_MODES = ("reject", "penalize", "fallback")
"""What an invalid action does (chosen at ``make`` time, see docs/envs.md): ``reject`` (the
default) refuses it and the learner owns the outcome (Routing: the request is rejected;
control envs: the invalid part of the action changes nothing), ``penalize`` does the same
and adds ``invalid_action_penalty`` to the cost, ``fallback`` hands the decision to the
scenario's heuristic (the paper's threshold rule; the v0 behaviour)."""


# (minimum, minimum inclusive, integer) per key: every value must also be a finite number
ENV_KEY_LIMITS: dict[str, tuple[float, bool, bool]] = {
    "control_interval_s": (0.01, True, False),  # below 10 ms a step is shorter than a decode step
    "provision_interval_s": (0.01, True, False),
    "max_instance_slots": (1, True, True),
    "threshold_max_tokens": (256, False, False),  # above MIN_THRESHOLD_TOKENS
    "threshold_bins": (2, True, True),
    "reject_penalty": (0.0, True, False),
    "usd_per_request": (0.0, False, False),
    "egress_usd_per_gb": (0.0, True, False),
    "shaping_weight": (0.0, True, False),
    "invalid_action_penalty": (0.0, True, False),
}
MIN_INTERVAL_S = ENV_KEY_LIMITS["control_interval_s"][0]


def check_number(where: str, v: Any, minimum: float, inclusive: bool = True, integer: bool = False) -> float:
    """``v`` as a float, or ``ValueError`` naming ``where``: a finite number (not a bool)
    above ``minimum`` (or equal when ``inclusive``), integral when ``integer``."""
    if isinstance(v, bool) or not isinstance(v, (int, float)) and not hasattr(v, "__float__"):
        raise ValueError(f"{where}: expected a number, got {v!r}")
    x = float(v)
    if not math.isfinite(x):
        raise ValueError(f"{where}: must be finite, got {v!r}")
    if x < minimum or (x == minimum and not inclusive):
        raise ValueError(f"{where}: must be {'>=' if inclusive else '>'} {minimum:g}, got {v!r}")
    if integer and x != int(x):
        raise ValueError(f"{where}: expected an integer, got {v!r}")
    return x


def check_env_config(cfg: dict[str, Any], where: str) -> None:
    """Refuse unknown keys and out-of-range values of an ``env:`` mapping (``where`` names it)."""
    unknown = set(cfg) - set(ENV_KEY_DEFAULTS)
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {sorted(unknown)} (known: {sorted(ENV_KEY_DEFAULTS)})")
    for k, v in cfg.items():
        lo, inclusive, integer = ENV_KEY_LIMITS[k]
        check_number(f"{where}.{k}", v, lo, inclusive, integer)


class PrfaasEnvBase(gym.Env):
    """Common base of the prfaas envs (see the concrete classes for the spec)."""

    metadata = {"render_modes": ["ansi", "human", "rgb_array"], "render_fps": 4}

    RESET_OPTIONS = ("n_requests",)
    """Keys ``reset(options=...)`` honours; any other key raises ``ValueError``."""

    def __init__(
        self,
        scenario: str | Path = "paper/prfaas_pd",
        *,
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
    ) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode: expected one of {self.metadata['render_modes']} or None, "
                             f"got {render_mode!r}")
        self.render_mode = render_mode
        if invalid_action not in INVALID_ACTION_MODES:
            raise ValueError(f"invalid_action: expected one of {', '.join(INVALID_ACTION_MODES)}, "
                             f"got {invalid_action!r}")
        self.invalid_action = invalid_action
        self.snapshot_staleness_s = check_number("snapshot_staleness_s", snapshot_staleness_s, 0.0)
        self.snapshot_noise = check_number("snapshot_noise", snapshot_noise, 0.0)
        self.scenario_name = str(scenario)
        self.scenario = load_scenario(scenario, overrides)
        self.data_dir = data_dir if data_dir is not None else os.environ.get("PRFAAS_DATA_DIR")
        from_scenario = {k: v for k, v in self.scenario.env.items() if k in ENV_KEY_DEFAULTS}
        check_env_config(from_scenario, f"{self.scenario.source}: env")
        check_env_config(dict(env_config or {}), "env_config")
        cfg = dict(ENV_KEY_DEFAULTS)
        cfg.update(from_scenario)
        cfg.update(env_config or {})
        self.config = cfg
        self.reward_config = RewardConfig(
            variant=reward,
            reject_penalty=float(cfg["reject_penalty"]),
            usd_per_request=float(cfg["usd_per_request"]),
            egress_usd_per_gb=float(cfg["egress_usd_per_gb"]),
            shaping_weight=float(cfg["shaping_weight"]),
            invalid_penalty=float(cfg["invalid_action_penalty"]) if invalid_action == "penalize" else 0.0,
            credit=credit,
        )
        if n_requests is not None:
            n_requests = int(check_number("n_requests", n_requests, 1, integer=True))
        if max_sim_time_s is not None and not (isinstance(max_sim_time_s, (int, float))
                                               and max_sim_time_s == math.inf):
            max_sim_time_s = check_number("max_sim_time_s", max_sim_time_s, 0.0, inclusive=False)
        if max_steps is not None:
            max_steps = int(check_number("max_steps", max_steps, 1, integer=True))
        self.n_requests = n_requests
        self.max_sim_time_s = float(max_sim_time_s) if max_sim_time_s is not None else float("inf")
        self.max_steps = max_steps
        self._usd_per_s = sum(c.gpus * c.hardware.price_per_gpu_hour_usd for c in self.scenario.clusters) / 3600.0
        self.sim: EnvSimulator | None = None
        # a throwaway simulator fixes the layout (slots, clusters, links) for the spaces
        self._layout_sim = self._build_sim(self.scenario.seed, n_requests=1)

    # ------------------------------------------------------------------ simulator
    def _build_sim(self, seed: int, n_requests: int | None = None, **kwargs: Any) -> EnvSimulator:
        return EnvSimulator(
            self.scenario,
            seed=seed,
            data_dir=self.data_dir,
            n_requests=n_requests if n_requests is not None else self.n_requests,
            **kwargs,
        )

    def _reset_sim(self, seed: int | None, options: dict[str, Any] | None = None, **kwargs: Any) -> EnvSimulator:
        n_requests = self._reset_options(options)
        super().reset(seed=seed)
        ep_seed = int(seed) if seed is not None else int(self.np_random.integers(0, 2**31 - 1))
        self.episode_seed = ep_seed
        self.sim = self._build_sim(ep_seed, n_requests=n_requests, **kwargs)
        self._steps = 0
        self._ended = False
        self._ended_idx = 0
        self._last_t = 0.0
        self._bytes_sent = 0.0
        self._return = 0.0
        self._invalid = 0
        # the metrics view (staleness, noise): own RNG stream, so the workload is unchanged
        self._view = SnapshotView(self.snapshot_staleness_s, self.snapshot_noise,
                                  np.random.default_rng([ep_seed, 0x5EED]))
        self._integrator = None
        if self.reward_config.credit == "integrated":
            sc = self.scenario
            self._integrator = LatencyIntegrator(self.sim.arrived, sc.ttft_slo_s, sc.tpot_slo_s)  # arrival order
        return self.sim

    def _reset_options(self, options: dict[str, Any] | None) -> int | None:
        """Check ``reset(options=...)``: ``{"n_requests": N}`` sets this episode's length
        (a curriculum); anything else raises, so no option is silently ignored."""
        if not options:
            return None
        if not isinstance(options, dict):
            raise ValueError(f"reset(options=...): expected a dict, got {type(options).__name__}")
        unknown = sorted(set(options) - set(self.RESET_OPTIONS))
        if unknown:
            raise ValueError(f"reset(options=...): unknown key(s) {unknown} (supported: {', '.join(self.RESET_OPTIONS)})")
        n = options.get("n_requests")
        return None if n is None else int(check_number("reset(options=...).n_requests", n, 1, integer=True))

    # ------------------------------------------------------------------ rendering
    def render(self) -> str | np.ndarray | None:
        """The cluster now: ``"ansi"`` returns a text picture (:func:`render_text`),
        ``"human"`` prints it, ``"rgb_array"`` returns an image (:func:`render_rgb`);
        ``None``: nothing."""
        if self.render_mode is None:
            return None
        if self.render_mode == "rgb_array":
            return render_rgb(self)
        text = render_text(self)
        if self.render_mode == "human":
            print(text)
            return None
        return text

    # ------------------------------------------------------------------ accounting
    def _outcome(self) -> tuple[Outcome, float, list[int]]:
        """Tally requests ended and dollars spent since the last call; return (outcome, dt_s,
        rids of the requests that ended)."""
        sim = self.sim
        o = Outcome()
        ended = sim.ended
        start = self._ended_idx
        if len(ended) != start:  # most steps end no request: skip the call
            sc = self.scenario
            self._ended_idx = tally(ended, start, sc.ttft_slo_s, sc.tpot_slo_s, o,
                                    latency=self._integrator is None)
            rids = [r.rid for r in ended[start:]]
        else:
            rids = []
        now = sim.env.now
        if self._integrator is not None:
            o.latency = self._integrator.accrue(now)
        dt = now - self._last_t
        self._last_t = now
        usd = self._usd_per_s * dt
        if sim.links and self.reward_config.variant == "cost":
            sent = sum(l.bytes_sent for l in sim.links)
            usd += (sent - self._bytes_sent) * 1e-9 * self.reward_config.egress_usd_per_gb
            self._bytes_sent = sent
        o.usd = usd
        return o, dt, rids

    def _finish_step(self, o: Outcome, dt: float, rids: list[int], terminated: bool, truncated: bool,
                     info: dict[str, Any], shaping: bool = False) -> tuple[float, dict[str, Any]]:
        parts = reward_parts(o, self.reward_config, shaping)
        r = 0.0
        for v in parts.values():
            r += v
        self._return += r
        info["sim_time_s"] = self.sim.env.now
        info["dt_s"] = dt
        info["reward_parts"] = parts
        info["ended_rids"] = rids
        info["invalid_actions"] = self._invalid
        if terminated or truncated:
            self._ended = True
            info["summary"] = self.sim.summary()
            info["episode_return"] = self._return
        return r, info

    def _after_window(self) -> dict[str, Any]:
        """Run the simulation past the episode's end (the last arrival) to completion or the
        time cap and report what ended meanwhile; it is not paid as reward (#12: the final
        step carried the whole backlog)."""
        self.sim.run_until(self.max_sim_time_s)
        o, _, rids = self._outcome()
        parts = reward_parts(o, self.reward_config)
        return {"requests": len(rids), "good": o.good, "missed": o.missed, "rejected": o.rejected,
                "reward": sum(parts.values()), "ended_rids": rids, "done": self.sim.done}

    def _time_or_step_cap(self) -> bool:
        return self.sim.env.now >= self.max_sim_time_s or (
            self.max_steps is not None and self._steps >= self.max_steps
        )
