"""``prfaas/Routing-v1``: one decision per arriving request."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from gymnasium import spaces

from prfaas_gym.env.actions import decision_to_slot, pull_slot_refs, request_mask, slot_decision
from prfaas_gym.env.base import PrfaasEnvBase, check_number
from prfaas_gym.env.observation import encode_routing_obs, routing_feature_names, routing_obs_size
from prfaas_gym.env.snapshot import (
    SLOT_REJECT, ClusterSnapshot, RequestFeatures, Slot, SnapshotReader, build_slots,
)
from prfaas_gym.sim.router import RouteDecision


class RoutingEnv(PrfaasEnvBase):
    """Per-request routing over a cross-DC PD-disaggregated cluster.

    ## Description
    Each step routes the request that has just arrived: the agent picks where it is
    prefilled (a PrfaaS cluster, a local PD-P instance, a prefill after a cross-cluster
    prefix pull) or rejects it. The simulator then runs (event-driven, simulated time) to the
    next arrival. Decode placement follows the default rule: the request's home PD cluster,
    rotating first fit over its decode instances.

    ## Action Space
    ``Discrete(S + 1)``: one action per candidate slot, fixed per scenario at construction
    (``env.slots``, labels in ``env.slot_labels``), reject last:

    1. each PrfaaS cluster (its least-predicted-wait prefill instance);
    2. each PD instance, if the PD cluster has at most ``max_instance_slots`` (16) instances,
       else one slot for the whole PD cluster (least-wait instance);
    3. "prefill at X after pulling Y's cached prefix" for each ordered pair of clusters that
       have prefix caches (absent in the paper scenario) - only if ``pull_slots``;
    4. reject.

    Masked (``action_masks()`` and ``info["action_mask"]``, ``int8`` 0/1 arrays, so
    ``env.action_space.sample(mask=info["action_mask"])`` works): slots whose cluster cannot
    ship KV to the request's home cluster (another datacenter without a link); slots whose
    instance is not up in the prefill role (decode role, draining, switching, failed) or whose queue is full;
    pull slots whose source holds no longer prefix than the destination; reject when
    ``allow_reject=False`` (unless no other slot is open). ``action_to_decision(a)`` /
    ``decision_to_action(d)`` convert between actions and ``RouteDecision``s, so heuristic
    routers can be evaluated through the env.

    An invalid action (masked, out of range, not an integer) never raises; what it does is
    chosen at construction, ``invalid_action=``: ``"reject"`` (default) rejects the request,
    so the learner owns the outcome; ``"penalize"`` rejects it and adds the reward part
    ``invalid`` = -``invalid_action_penalty`` (1); ``"fallback"`` routes it by the paper's
    threshold rule (``ThresholdRouter`` at the scenario's threshold; the v0 behaviour) and
    sets ``info["fallback"]``. ``info["invalid_action"]`` flags the step,
    ``info["invalid_actions"]`` counts the episode's, ``info["action"]`` is the slot used.

    ## Observation Space
    ``Box(0, 1, (4S + 6C + 3L + 2,), float32)`` (S slots without reject, C clusters, L links;
    paper scenario: S=9, C=2, L=1 -> 53), computed by
    :func:`prfaas_gym.env.observation.encode_routing_obs` from a
    :class:`~prfaas_gym.env.snapshot.ClusterSnapshot` and the request's
    :class:`~prfaas_gym.env.snapshot.RequestFeatures`; names in ``env.feature_names``.

    | feature | count | meaning | unit | bounds |
    |---|---|---|---|---|
    | slot_open | S | slot accepts a request now | 0/1 | [0, 1] |
    | slot_queue | S | q/(q+4), requests queued or prefilling | requests | [0, 1] |
    | slot_wait | S | w/(w+TTFT SLO), predicted queue wait | s | [0, 1] |
    | slot_ttft | S | t/(t+TTFT SLO), wait + predicted service (prefill, pull) | s | [0, 1] |
    | cached_frac | C | usable cached prefix / prompt | fraction | [0, 1] |
    | uncached_len | C | log2(1+uncached tokens)/17 | tokens | [0, 1] |
    | prefill_frac | C | instances up in prefill role / instances | fraction | [0, 1] |
    | decode_mem | C | decode KV memory used / capacity | fraction | [0, 1] |
    | decode_batch | C | decoding sequences / decode batch slots | fraction | [0, 1] |
    | decode_queue | C | q/(q+8), requests awaiting decode admission | requests | [0, 1] |
    | link_bw | L | usable / nominal bandwidth | fraction | [0, 1] |
    | link_util | L | aggregate rate / nominal bandwidth | fraction | [0, 1] |
    | link_flows | L | f/(f+8), concurrent transfers | flows | [0, 1] |
    | input_len | 1 | log2(1+prompt tokens)/17 | tokens | [0, 1] |
    | output_len | 1 | log2(1+output tokens)/17; 0 unless ``oracle_features`` | tokens | [0, 1] |

    The true output length is an oracle feature (a live router does not know it): hidden
    (0, "unknown") unless ``oracle_features=True``. The load metrics are the router's view
    (:class:`~prfaas_gym.env.snapshot.SnapshotView`): ``snapshot_staleness_s`` (0) holds a
    snapshot until it is that old, ``snapshot_noise`` (0) multiplies each load metric by
    ``max(0, 1 + noise * N(0, 1))`` at each refresh. The action mask is always exact.

    ## Rewards
    Paid for the requests that ended since the previous step (their ids in
    ``info["ended_rids"]``; see :mod:`prfaas_gym.env.rewards`): ``goodput`` +1 per completion
    meeting both SLOs; ``slo`` also -1 per miss or rejection; ``latency`` -(TTFT/SLO +
    TPOT/SLO) per completion and -4 per rejection (``credit="integrated"``: accrued while
    the requests wait and decode instead); ``cost`` +1 per good completion minus (GPU +
    egress dollars) / 0.05 $.
    Plus the per-decision ``shaping`` part -0.1 x min(predicted TTFT / TTFT SLO, 4) of the
    chosen slot (``shaping_weight`` in ``env_config``; 0 disables). Parts in
    ``info["reward_parts"]``.

    ## Starting State
    A fresh simulator of the scenario with the episode's seed (``reset(seed=s)``; without a
    seed one is drawn from the env's RNG), run to the first arrival. ``reset(options=
    {"n_requests": N})`` sets this episode's length; other option keys raise. Requests and their home
    clusters are drawn from the seed, so equal seeds give equal workloads for every policy.

    ## Episode End
    The episode's window ends with the step that routes the last request: ``terminated`` if
    no request is still in flight then, else ``truncated`` (the MDP goes on; bootstrap). The
    in-flight rest is not paid as reward: the env runs it to completion (or
    ``max_sim_time_s``) and reports it in ``info["after_window"]`` (``requests``, ``good``,
    ``missed``, ``rejected``, ``reward`` it would have paid, ``ended_rids``, ``done``).
    ``truncated`` also when simulated time reaches ``max_sim_time_s`` or after ``max_steps``
    decisions. At the end ``info["summary"]`` holds ``sim.summary()`` (after the rest ran)
    and ``info["episode_return"]`` the undiscounted return.

    ## Arguments
    ``scenario`` (name or path, default ``paper/prfaas_pd``), ``reward`` (goodput, slo,
    latency, cost), ``n_requests`` (requests per episode; default the scenario's),
    ``max_sim_time_s``, ``max_steps``, ``data_dir`` (trace root, default
    ``$PRFAAS_DATA_DIR``), ``allow_reject`` (True), ``pull_slots`` (True),
    ``max_instance_slots`` (scenario ``env.max_instance_slots``, 16), ``invalid_action``
    (reject, penalize, fallback), ``credit`` (end, integrated), ``oracle_features``
    (False), ``snapshot_staleness_s`` (0), ``snapshot_noise`` (0), ``render_mode`` (None,
    ansi, human, rgb_array; see ``render()``), ``env_config``
    (overrides scenario ``env:`` keys), ``overrides`` (dotted scenario overrides). Bad values
    raise ``ValueError`` naming the argument.

    ## Version History
    * v1: invalid actions reject by default (``invalid_action``; v0 fell back to the
      threshold rule); the episode ends with the last arrival and the backlog is reported
      in ``info["after_window"]`` instead of paid on the final step; ``info["ended_rids"]``;
      ``credit="integrated"``; observations never hold NaN (a pull over a down link); the
      true output length is hidden unless ``oracle_features=True``; stale/noisy snapshots;
      ``render_mode``; ``reset(options={"n_requests": N})`` (other keys raise).
    * v0: initial version.
    """

    def __init__(
        self,
        scenario: str | Path = "paper/prfaas_pd",
        *,
        reward: str = "goodput",
        n_requests: int | None = None,
        max_sim_time_s: float | None = None,
        max_steps: int | None = None,
        data_dir: str | Path | None = None,
        allow_reject: bool = True,
        pull_slots: bool = True,
        max_instance_slots: int | None = None,
        oracle_features: bool = False,
        env_config: dict[str, Any] | None = None,
        overrides: dict[str, Any] | None = None,
        invalid_action: str = "reject",
        credit: str = "end",
        snapshot_staleness_s: float = 0.0,
        snapshot_noise: float = 0.0,
        render_mode: str | None = None,
    ) -> None:
        super().__init__(scenario, reward=reward, n_requests=n_requests, max_sim_time_s=max_sim_time_s,
                         max_steps=max_steps, data_dir=data_dir, env_config=env_config, overrides=overrides,
                         invalid_action=invalid_action, credit=credit,
                         snapshot_staleness_s=snapshot_staleness_s, snapshot_noise=snapshot_noise,
                         render_mode=render_mode)
        lay = self._layout_sim
        mis = int(check_number("max_instance_slots", max_instance_slots, 1, integer=True)
                  if max_instance_slots is not None else self.config["max_instance_slots"])
        self.slots: tuple[Slot, ...] = build_slots(lay, mis, pull_slots)
        self.slot_labels = [s.label for s in self.slots]
        self.allow_reject = bool(allow_reject)
        self.oracle_features = bool(oracle_features)
        self._decisions = [slot_decision(s) for s in self.slots]
        self._pulls = pull_slot_refs(self.slots)
        self._n_actions = len(self.slots)
        obs_slots = [s.label for s in self.slots if s.kind != SLOT_REJECT]
        clusters = [c.name for c in lay.clusters]
        links = [l.name for l in lay.links]
        self.feature_names = routing_feature_names(obs_slots, clusters, links)
        n = routing_obs_size(len(obs_slots), len(clusters), len(links))
        self.observation_space = spaces.Box(0.0, 1.0, (n,), np.float32)
        self.action_space = spaces.Discrete(self._n_actions)
        self._empty_features = RequestFeatures(0, 0, (0,) * len(clusters), (0.0,) * len(obs_slots))
        self._layout_sim = None
        self._mask: list[bool] = [True] * self._n_actions
        self._req = None
        self._snap: ClusterSnapshot | None = None
        self._feats: RequestFeatures | None = None

    # ------------------------------------------------------------------ public helpers
    def action_masks(self) -> np.ndarray:
        """Valid actions now, as ``int8`` 0/1 (sb3-contrib MaskablePPO protocol; the dtype
        ``Discrete.sample(mask=...)`` expects)."""
        return np.array(self._mask, dtype=np.int8)

    def action_to_decision(self, action: int) -> RouteDecision:
        """The ``RouteDecision`` action ``action`` stands for (decode at the home cluster)."""
        return self._decisions[int(action)]

    def decision_to_action(self, decision: RouteDecision) -> int:
        """The action closest to ``decision`` (see ``actions.decision_to_slot``)."""
        return decision_to_slot(decision, self.slots, self.sim)

    @property
    def pending_request(self):
        """The request being routed (``None`` after the episode ended)."""
        return self._req

    # ------------------------------------------------------------------ gym API
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        sim = self._reset_sim(seed, options, external_routing=True)
        self._reader = SnapshotReader(sim, self.slots, self.oracle_features)
        self._req = sim.next_decision(self.max_sim_time_s)
        obs = self._observe()
        return obs, {"sim_time_s": sim.env.now, "dt_s": 0.0, "action_mask": np.array(self._mask, dtype=np.int8)}

    def step(self, action):
        sim = self.sim
        req = self._req
        if req is None:
            raise RuntimeError("step() after the episode ended (or before reset()): call reset()")
        try:
            a = int(action)
        except (TypeError, ValueError, OverflowError):
            a = -1
        n = self._n_actions
        invalid = not (0 <= a < n and self._mask[a])
        fallback = False
        if invalid:
            self._invalid += 1
            if self.invalid_action == "fallback":
                fallback = True
                d = sim.fallback_router.route(req, sim)
                a = decision_to_slot(d, self.slots, sim)
            else:  # reject / penalize: the learner's action refuses the request
                a = n - 1
                d = self._decisions[a]
        else:
            d = self._decisions[a]
        snap, feats = self._snap, self._feats
        if a < n - 1:
            pred = (snap.slot_wait_s[a] + feats.slot_service_s[a]) / snap.ttft_slo_s
        else:
            pred = 0.0
        sim.apply(d)
        self._steps += 1
        terminated = truncated = False
        # closed-loop turns and retries arrive as earlier requests end: more may come while
        # any is still due
        last = sim.arrivals_left == 0
        if not last:
            self._req = sim.next_decision(self.max_sim_time_s)
            if self._req is None:  # the time cap, or the remaining turns were abandoned
                terminated = sim.done
                truncated = not terminated
        else:
            # the window ends with the last arrival: the episode ends here, truncated while
            # requests are in flight (their outcome is reported in info, not paid)
            self._req = None
            terminated = sim.done
            truncated = not terminated
        if not terminated and self.max_steps is not None and self._steps >= self.max_steps:
            truncated = True
        if truncated:
            self._req = None
        obs = self._observe()
        o, dt, rids = self._outcome()
        o.pred_ttft_ratio = pred
        o.invalid = invalid
        info = {"action_mask": np.array(self._mask, dtype=np.int8), "invalid_action": invalid,
                "fallback": fallback, "action": a}
        t_end = sim.env.now
        if last and truncated:
            info["after_window"] = self._after_window()
        r, info = self._finish_step(o, dt, rids, terminated, truncated, info, shaping=True)
        info["sim_time_s"] = t_end
        return obs, r, terminated, truncated, info

    def _observe(self) -> np.ndarray:
        reader = self._reader
        snap = reader.read()
        req = self._req
        feats = reader.request(req) if req is not None else self._empty_features
        self._snap, self._feats = snap, feats
        # the mask is the env's truth (what it accepts); the observation is the router's view
        self._mask = request_mask(self.slots, snap, feats, self.allow_reject, reader.slot_reach, self._pulls)
        view = self._view
        return encode_routing_obs(view(snap) if view.active else snap, feats)
