"""``prfaas/DualTimescale-v1``: threshold (and cap) every short interval, P/D split every long one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from gymnasium import spaces

from prfaas_gym.env._control_doc import (
    CONTROL_END_DOC, CONTROL_INVALID_DOC, CONTROL_OBS_DOC, CONTROL_REWARD_DOC, CONTROL_VERSION_DOC,
)
from prfaas_gym.env.base import check_number
from prfaas_gym.env.control import ControlEnvBase, as_choice, threshold_bins


class DualTimescaleEnv(ControlEnvBase):
    __doc__ = f"""Both timescales of PrfaaS scheduling in one env.

    ## Description
    Steps every ``control_interval_s`` (default 10 s). Each step sets the routing threshold
    (and, with ``bandwidth_cap=True``, a cross-DC egress cap); every k-th step, k =
    round(``provision_interval_s`` / ``control_interval_s``) (default 12), the provisioning
    part of the action also moves PD instances between prefill and decode (drain + switch
    delay, as in ``prfaas/Provisioning-v1``). ``info["provision_step"]`` says whether the
    provisioning part of the *next* step will be applied (it is ignored otherwise).

    ## Action Space
    ``MultiDiscrete([B] + [3] * P (+ [C]))``: ``a[0]`` a threshold bin (B =
    ``threshold_bins``, default 16; bin 0 = 0 tokens, bins 1..B-1 log-uniform from 256 to
    ``threshold_max_tokens``, listed in ``env.thresholds``); ``a[1:1+P]`` per PD cluster
    0/1/2 = one prefill instance fewer / keep / one more; with ``bandwidth_cap=True`` a last
    entry of C = 5 cap levels (0.2, 0.4, 0.6, 0.8, 1.0 x nominal bandwidth). Discrete so that
    stable-baselines3 PPO/A2C handle it (they do not take ``Dict`` actions). Masks as in
    ``prfaas/Provisioning-v1`` (``action_masks()`` flat, ``info["action_mask"]`` per
    sub-action), the P/D part only on provisioning steps; invalid: values outside their
    range and masked P/D moves.
    {CONTROL_INVALID_DOC}

    ## Observation Space
    {CONTROL_OBS_DOC}
    ## Rewards
    {CONTROL_REWARD_DOC}
    ## Starting State
    A fresh simulator with the episode's seed, the scenario's threshold and split, at time 0.

    ## Episode End
    {CONTROL_END_DOC}
    ## Arguments
    ``scenario``, ``reward``, ``n_requests``, ``max_sim_time_s``, ``max_steps``,
    ``data_dir``, ``invalid_action``, ``credit``, ``snapshot_staleness_s``,
    ``snapshot_noise``, ``render_mode``, ``env_config``, ``overrides`` as for
    ``prfaas/Routing-v1``;
    ``interval_s`` (overrides ``control_interval_s``), ``provision_every`` (overrides k),
    ``bandwidth_cap`` (False).

    ## Version History
    {CONTROL_VERSION_DOC}
    """

    CAP_LEVELS = (0.2, 0.4, 0.6, 0.8, 1.0)
    MASKED = True

    def __init__(
        self,
        scenario: str | Path = "paper/prfaas_pd",
        *,
        reward: str = "goodput",
        bandwidth_cap: bool = False,
        interval_s: float | None = None,
        provision_every: int | None = None,
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
        super().__init__(scenario, interval_s=interval_s, reward=reward, n_requests=n_requests,
                         max_sim_time_s=max_sim_time_s, max_steps=max_steps, data_dir=data_dir,
                         env_config=env_config, overrides=overrides,
                         invalid_action=invalid_action, credit=credit,
                         snapshot_staleness_s=snapshot_staleness_s, snapshot_noise=snapshot_noise,
                         render_mode=render_mode, interval_key="control_interval_s")
        if not self.pd_clusters:
            raise ValueError(f"{self.scenario_name}: DualTimescale needs at least one PD cluster")
        if provision_every is None:
            provision_every = max(1, round(float(self.config["provision_interval_s"]) / self.interval_s))
        provision_every = check_number("provision_every", provision_every, 1, integer=True)
        self.provision_every = int(provision_every)
        self.thresholds = threshold_bins(int(self.config["threshold_bins"]), self.threshold_max_tokens)
        self.bandwidth_cap = bool(bandwidth_cap)
        nvec = [len(self.thresholds)] + [3] * len(self.pd_clusters)
        if self.bandwidth_cap:
            nvec.append(len(self.CAP_LEVELS))
        self.action_space = spaces.MultiDiscrete(nvec)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        obs, info = self._reset_control(seed, options)
        info["provision_step"] = True
        return obs, info

    def step(self, action):
        self._check_running()
        a = self._flat_action(action)
        invalid = 0
        b = as_choice(a[0], len(self.thresholds))
        if b is not None:
            self._set_threshold(self.thresholds[b])
        else:
            invalid += 1
            if self.invalid_action == "fallback":
                self._set_threshold(self.scenario.default_threshold_tokens)
        provision = self._steps % self.provision_every == 0
        p = len(self.pd_clusters)
        if provision:
            invalid += self._apply_provision(a[1:1 + p], self._provision_masks())
        if self.bandwidth_cap:
            k = as_choice(a[1 + p], len(self.CAP_LEVELS))
            if k is not None:
                self._set_cap_fraction(self.CAP_LEVELS[k])
            else:
                invalid += 1
                if self.invalid_action == "fallback":
                    self._set_cap_fraction(1.0)
        obs, r, term, trunc, info = self._run_interval(invalid)
        info["provision_step"] = self._steps % self.provision_every == 0
        info["provisioned"] = provision
        return obs, r, term, trunc, info

    def action_mask(self) -> tuple:
        """Threshold bins all valid; provisioning masked on provisioning steps (ignored on the
        others, so every choice is valid there); cap levels all valid."""
        prov = self._steps % self.provision_every == 0 if self.sim is not None else True
        masks = [np.ones(len(self.thresholds), dtype=np.int8)]
        masks += self._provision_masks() if prov else [np.ones(3, dtype=np.int8)] * len(self.pd_clusters)
        if self.bandwidth_cap:
            masks.append(np.ones(len(self.CAP_LEVELS), dtype=np.int8))
        return tuple(masks)
