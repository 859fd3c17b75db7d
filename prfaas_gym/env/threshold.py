"""``prfaas/Threshold-v1``: set the routing threshold (and a bandwidth cap) every interval."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from gymnasium import spaces

from prfaas_gym.env._control_doc import (
    CONTROL_END_DOC, CONTROL_INVALID_DOC, CONTROL_OBS_DOC, CONTROL_REWARD_DOC, CONTROL_VERSION_DOC,
)
from prfaas_gym.env.control import ControlEnvBase, cap_from_unit, threshold_from_unit


class ThresholdEnv(ControlEnvBase):
    __doc__ = f"""Short-timescale control of the paper's routing threshold.

    ## Description
    Every ``control_interval_s`` simulated seconds (scenario ``env.control_interval_s``,
    default 10) the agent sets the routing threshold t: until the next step, every arriving
    request whose uncached length (after the home PD cluster's prefix cache) exceeds t is
    prefilled on the PrfaaS cluster with the longest cached prefix, the others on the local
    PD-P instances (``ThresholdRouter``). With ``bandwidth_cap=True`` the agent also caps
    the cross-DC links' egress.

    ## Action Space
    ``Box(-1, 1, (1,), float32)`` (``(2,)`` with ``bandwidth_cap=True``). ``a[0]`` maps
    log-uniformly to t in [256, ``threshold_max_tokens``] (131072) tokens:
    ``t = exp(log 256 + (a+1)/2 * (log max - log 256))``. ``a[1]`` maps linearly to a cap of
    0.05..1 x nominal bandwidth on every link (``Link.set_cap``). Out-of-range values are
    clipped; NaN or inf is invalid. Nothing is masked (``action_masks()`` raises).
    {CONTROL_INVALID_DOC}

    ## Observation Space
    {CONTROL_OBS_DOC}
    ## Rewards
    {CONTROL_REWARD_DOC}
    ## Starting State
    A fresh simulator with the episode's seed and the scenario's threshold, at time 0.

    ## Episode End
    {CONTROL_END_DOC}
    ## Arguments
    ``scenario``, ``reward``, ``n_requests``, ``max_sim_time_s``, ``max_steps``,
    ``data_dir``, ``invalid_action``, ``credit``, ``snapshot_staleness_s``,
    ``snapshot_noise``, ``render_mode``, ``env_config``, ``overrides`` as for
    ``prfaas/Routing-v1``;
    ``interval_s`` (overrides ``control_interval_s``); ``bandwidth_cap`` (False).

    ## Version History
    {CONTROL_VERSION_DOC}
    """

    def __init__(
        self,
        scenario: str | Path = "paper/prfaas_pd",
        *,
        reward: str = "goodput",
        bandwidth_cap: bool = False,
        interval_s: float | None = None,
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
        self.bandwidth_cap = bool(bandwidth_cap)
        self.action_space = spaces.Box(-1.0, 1.0, (2 if self.bandwidth_cap else 1,), np.float32)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        return self._reset_control(seed, options)

    def step(self, action):
        self._check_running()
        a = self._flat_action(action)
        invalid = 0
        if math.isfinite(a[0]):
            self._set_threshold(threshold_from_unit(float(a[0]), self.threshold_max_tokens))
        else:
            invalid += 1
            if self.invalid_action == "fallback":
                self._set_threshold(self.scenario.default_threshold_tokens)
        if self.bandwidth_cap:
            if math.isfinite(a[1]):
                self._set_cap_fraction(cap_from_unit(float(a[1])))
            else:
                invalid += 1
                if self.invalid_action == "fallback":
                    self._set_cap_fraction(1.0)
        return self._run_interval(invalid)
