"""How the tokens of one step spread over the routed experts of one expert-parallel rank.

The routed-expert time of a fused-MoE kernel depends on two counts on the GPU: the (token, expert)
pairs it computes and the distinct experts whose weights it reads. Three routings
(``step_time.moe_routing``):

* ``uniform`` (default): every token picks its top-k independently and uniformly, as independent
  requests do in serving: ``tokens k / g`` pairs on ``E_g (1 - (1 - k/E)^M)`` expected experts;
* ``balanced``: perfect balance, every pair on a new expert until all are hit;
* ``collector``: the routing AIConfigurator's MoE rows were measured with. Its collector
  (``collector/helper.py`` ``balanced_logits``) gives token ``i`` the experts
  ``floor(i s / M) + j s`` (``s = ceil(E / k)``, or ``i + j s`` when ``M >= s``), and vLLM's router
  then applies the model's grouped top-k (DeepSeek-V3: ``n_group`` 8, ``topk_group`` 4,
  ``vllm/model_executor/layers/fused_moe`` ``grouped_topk``): every group scores the same, the
  first ``topk_group`` groups win the tie, the picks in them are kept and the remaining ``k - kept``
  are ties again, taken by the lowest expert indices. Rank 0 (the rank the collector measures)
  then computes 5 of every token's 8 pairs at EP 8 instead of 1: the table's EP 1..256 rows at
  4096 tokens scale as 8 : 8 : 6 : 5 : 4.5 : 4.25 : 4 : 2 : 1 (measured 5.45 (Triton) / 6.03 :
  4.28 : 3.42 : 2.98 : 2.82 : 2.66 : 1.40 : 0.71 ms), which this reproduces.
"""

from __future__ import annotations

import math
from functools import lru_cache

MOE_ROUTINGS = ("uniform", "balanced", "collector")
"""Known values of ``moe_routing``."""


def rank_load(routing: str, tokens: float, experts: int, k: int, gpus: int,
              groups: int = 1, topk_groups: int = 1) -> tuple[float, float]:
    """``(pairs, touched experts)`` on one expert-parallel rank of ``gpus`` for a step of ``tokens``."""
    if tokens <= 0:
        return 0.0, 0.0
    e_local = experts / gpus
    if routing == "uniform":
        return tokens * k / gpus, e_local * (1.0 - (1.0 - k / experts) ** tokens)
    if routing == "balanced":
        pairs = tokens * k / gpus
        return pairs, min(e_local, pairs)
    if routing == "collector":
        return _collector_rank0(int(round(tokens)), experts, k, gpus, groups, topk_groups)
    raise ValueError(f"moe_routing: expected one of {', '.join(MOE_ROUTINGS)}, got {routing!r}")


@lru_cache(maxsize=1 << 12)
def _collector_rank0(tokens: int, experts: int, k: int, gpus: int, groups: int,
                     topk_groups: int) -> tuple[float, float]:
    stride = math.ceil(experts / k)
    group_size = experts // groups
    local = experts // gpus  # rank 0 holds experts [0, local)
    # tokens i and i + stride pick the same experts (M >= stride): count each pattern once, weighted
    patterns = min(tokens, stride)
    pairs = 0.0
    touched: set[int] = set()
    for i in range(patterns):
        weight = (tokens - i + stride - 1) // stride if tokens >= stride else 1
        base = i if tokens >= stride else math.floor(i * stride / tokens)
        picks = sorted({(base + j * stride) % experts for j in range(k)})
        chosen = _grouped_topk(picks, k, group_size, groups, topk_groups)
        mine = [x for x in chosen if x < local]
        pairs += weight * len(mine)
        touched.update(mine)
    return pairs, float(len(touched))


def _grouped_topk(picks: list[int], k: int, group_size: int, groups: int, topk_groups: int) -> list[int]:
    """vLLM's grouped top-k on one-hot logits: groups scored by their top-2 (noaux_tc), ties to the
    lowest index; within the chosen groups the picked experts, then the lowest-index others."""
    if groups <= 1:
        return picks
    score = [0] * groups
    for x in picks:
        score[x // group_size] += 1
    chosen_groups = sorted(range(groups), key=lambda gi: (-min(score[gi], 2), gi))[:topk_groups]
    allowed = sorted(x for gi in chosen_groups for x in range(gi * group_size, (gi + 1) * group_size))
    kept = [x for x in picks if x // group_size in chosen_groups]
    fill = [x for x in allowed if x not in kept][: k - len(kept)]
    return kept + fill
