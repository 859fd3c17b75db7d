"""The observation table shared by the control envs' docstrings (kept in one place)."""

CONTROL_OBS_DOC = """
    ``Box(0, 1, (3S + 4C + 3L + 6,), float32)``: S prefill slots (PrfaaS clusters, PD
    instances), C clusters, L links (paper scenario: S=9, C=2, L=1 -> 44), computed by
    :func:`prfaas_gym.env.observation.encode_control_obs` from a
    :class:`~prfaas_gym.env.snapshot.ClusterSnapshot` and the interval's
    :class:`~prfaas_gym.env.observation.WindowStats`; names in ``env.feature_names``.

    | feature | count | meaning | unit | bounds |
    |---|---|---|---|---|
    | slot_open | S | slot accepts a request now | 0/1 | [0, 1] |
    | slot_queue | S | q/(q+4), requests queued or prefilling | requests | [0, 1] |
    | slot_wait | S | w/(w+TTFT SLO), predicted queue wait | s | [0, 1] |
    | prefill_frac | C | instances up in prefill role / instances | fraction | [0, 1] |
    | decode_mem | C | decode KV memory used / capacity | fraction | [0, 1] |
    | decode_batch | C | decoding sequences / decode batch slots | fraction | [0, 1] |
    | decode_queue | C | q/(q+8), requests awaiting decode admission | requests | [0, 1] |
    | link_bw | L | usable / nominal bandwidth | fraction | [0, 1] |
    | link_util | L | aggregate rate / nominal bandwidth | fraction | [0, 1] |
    | link_flows | L | f/(f+8), concurrent transfers | flows | [0, 1] |
    | arrival_rate | 1 | r/(r+mean rate of the episode), arrivals in the interval | req/s | [0, 1] |
    | mean_input_len | 1 | log2(1+mean prompt tokens of the interval's arrivals)/17 | tokens | [0, 1] |
    | long_frac | 1 | arrivals whose uncached length exceeded the threshold | fraction | [0, 1] |
    | good_frac | 1 | requests ended in the interval that met both SLOs | fraction | [0, 1] |
    | reject_frac | 1 | requests ended in the interval by rejection | fraction | [0, 1] |
    | threshold | 1 | current threshold / threshold_max_tokens | fraction | [0, 1] |
"""

CONTROL_REWARD_DOC = """
    Paid each step for the requests that ended during the interval (ids in
    ``info["ended_rids"]``; see :mod:`prfaas_gym.env.rewards`): ``goodput`` +1 per completion meeting both SLOs; ``slo``
    also -1 per miss or rejection; ``latency`` -(TTFT/SLO + TPOT/SLO) per completion and -4
    per rejection; ``cost`` +1 per good completion minus (GPU + egress dollars of the
    interval) / 0.05 $. ``invalid_action="penalize"`` adds ``invalid`` = -1 per invalid
    part of the action. Parts in ``info["reward_parts"]``.
"""

CONTROL_INVALID_DOC = """
    What an invalid action does is chosen at construction (``invalid_action=``): with
    ``"reject"`` (default) the invalid part changes nothing (the controls keep their values),
    ``"penalize"`` also costs ``invalid_action_penalty`` (1) per invalid part, ``"fallback"``
    sets the scenario's default instead (its threshold; no cap; no P/D change).
    ``info["invalid_action"]`` flags the step, ``info["invalid_actions"]`` counts the
    episode's. A malformed action (wrong length, not numeric) raises ``ValueError``.
"""

CONTROL_VERSION_DOC = """
    * v1: invalid actions (NaN, out of range, masked P/D moves) handled by ``invalid_action``
      (v0: NaN thresholds leaked into the observation, out-of-range P/D moves moved several
      instances, NaN discrete actions raised); action masks; ``info["ended_rids"]``;
      ``step()`` after the end raises; arguments checked; ``snapshot_staleness_s`` and
      ``snapshot_noise`` (the load metrics as a live controller sees them); ``render_mode``
      (ansi, human, rgb_array); ``reset(options={"n_requests": N})`` (other keys raise).
    * v0: initial version.
"""

CONTROL_END_DOC = """
    ``terminated`` when every request of the episode has ended (the last interval stops at
    that event, so ``dt_s`` may be shorter than the interval). ``truncated`` when simulated
    time reaches ``max_sim_time_s`` or after ``max_steps`` steps. At the end
    ``info["summary"]`` holds ``sim.summary()`` and ``info["episode_return"]`` the return.
"""
