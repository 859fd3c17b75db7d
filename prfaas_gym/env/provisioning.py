"""``prfaas/Provisioning-v1``: change the P/D split of the PD clusters every long interval."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gymnasium import spaces

from prfaas_gym.env._control_doc import (
    CONTROL_END_DOC, CONTROL_INVALID_DOC, CONTROL_OBS_DOC, CONTROL_REWARD_DOC, CONTROL_VERSION_DOC,
)
from prfaas_gym.env.control import ControlEnvBase


class ProvisioningEnv(ControlEnvBase):
    __doc__ = f"""Long-timescale prefill/decode rebalancing of the local PD cluster(s).

    ## Description
    Every ``provision_interval_s`` simulated seconds (scenario ``env.provision_interval_s``,
    default 120) the agent moves one PD instance between the prefill and decode roles (or
    not). Role changes go through the simulator: the instance drains its work, waits the
    scenario's ``switch_delay_s`` and comes back in its new role; each PD cluster keeps at
    least one instance of each role. Requests are routed by the paper's threshold rule with
    the scenario's threshold; PrfaaS instances stay prefill-only.

    ## Action Space
    ``MultiDiscrete([3] * P)``, P = number of PD clusters (1 in the shipped scenarios):
    per PD cluster ``0`` = one prefill instance fewer, ``1`` = keep, ``2`` = one more
    (relative to the target split, so repeated actions while an instance switches add up).
    Masked (``action_masks()``, flat ``int8`` for sb3-contrib's MaskablePPO, and
    ``info["action_mask"]``, a tuple of ``int8`` arrays per PD cluster for
    ``action_space.sample(mask=...)``): a move that would leave a role without a (non-failed)
    instance. Invalid: masked moves and values outside 0..2.
    {CONTROL_INVALID_DOC}

    ## Observation Space
    {CONTROL_OBS_DOC}
    ## Rewards
    {CONTROL_REWARD_DOC}
    ## Starting State
    A fresh simulator with the episode's seed and the scenario's initial split, at time 0.

    ## Episode End
    {CONTROL_END_DOC}
    ## Arguments
    ``scenario``, ``reward``, ``n_requests``, ``max_sim_time_s``, ``max_steps``,
    ``data_dir``, ``invalid_action``, ``credit``, ``snapshot_staleness_s``,
    ``snapshot_noise``, ``render_mode``, ``env_config``, ``overrides`` as for
    ``prfaas/Routing-v1``;
    ``interval_s`` (overrides ``provision_interval_s``).

    ## Version History
    {CONTROL_VERSION_DOC}
    """

    def __init__(
        self,
        scenario: str | Path = "paper/prfaas_pd",
        *,
        reward: str = "goodput",
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
                         render_mode=render_mode, interval_key="provision_interval_s")
        if not self.pd_clusters:
            raise ValueError(f"{self.scenario_name}: Provisioning needs at least one PD cluster")
        self.action_space = spaces.MultiDiscrete([3] * len(self.pd_clusters))

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        return self._reset_control(seed, options)

    def step(self, action):
        self._check_running()
        a = self._flat_action(action)
        return self._run_interval(self._apply_provision(a, self._provision_masks()))

    MASKED = True

    def action_mask(self) -> tuple:
        return tuple(self._provision_masks())
