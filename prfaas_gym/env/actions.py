"""Routing actions: slot index <-> :class:`~prfaas_gym.sim.RouteDecision`, and action masks.

Decode placement is not part of the action: every decision leaves ``decode_cluster=None``,
i.e. the request's home PD cluster, where the simulator admits it to a decode instance by
rotating first fit (``Cluster._admit_waiting``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

from prfaas_gym.env.snapshot import (
    SLOT_INSTANCE, SLOT_PULL, SLOT_REJECT, ClusterSnapshot, RequestFeatures, Slot,
)
from prfaas_gym.sim.router import REJECT, RouteDecision

if TYPE_CHECKING:
    from prfaas_gym.sim.simulator import Simulator


def slot_decision(slot: Slot) -> RouteDecision:
    """The decision a slot stands for (decode at the home cluster)."""
    if slot.kind == SLOT_REJECT:
        return REJECT
    if slot.kind == SLOT_INSTANCE:
        return RouteDecision(prefill_cluster=slot.cluster, prefill_instance=slot.instance)
    if slot.kind == SLOT_PULL:
        return RouteDecision(prefill_cluster=slot.cluster, pull_from=slot.pull_from)
    return RouteDecision(prefill_cluster=slot.cluster)


def pull_slot_refs(slots: Sequence[Slot]) -> list[tuple[int, int, int]]:
    """``(slot index, destination cluster, source cluster)`` of each pull slot."""
    return [(i, s.cluster, s.pull_from) for i, s in enumerate(slots) if s.kind == SLOT_PULL]


def action_mask(slots: Sequence[Slot], slot_open: Sequence[float], cached_tokens: Sequence[int],
                allow_reject: bool, pulls: Sequence[tuple[int, int, int]] | None = None,
                reachable: Sequence[bool] | None = None) -> list[bool]:
    """Valid actions: open slots whose cluster can ship KV to the request's decode cluster
    (``reachable``, per slot; ``None``: all); pull slots only when the source holds a longer
    prefix; reject when allowed. ``slot_open`` excludes reject (it is last in ``slots``);
    ``pulls`` (from :func:`pull_slot_refs`) may be passed to skip scanning ``slots``."""
    if reachable is None:
        mask = [o > 0.0 for o in slot_open]
    else:
        mask = [o > 0.0 and r for o, r in zip(slot_open, reachable)]
    for i, dst, src in (pull_slot_refs(slots) if pulls is None else pulls):
        if mask[i]:
            mask[i] = cached_tokens[src] > cached_tokens[dst]
    mask.append(bool(allow_reject))
    if not any(mask):
        mask[-1] = True  # nothing can take the request: only reject (or fallback) remains
    return mask


def request_mask(slots: Sequence[Slot], snap: ClusterSnapshot, feats: RequestFeatures,
                 allow_reject: bool, slot_reach: Sequence[Sequence[bool]],
                 pulls: Sequence[tuple[int, int, int]] | None = None) -> list[bool]:
    """:func:`action_mask` for one request: its cached prefixes, and the slots that reach its
    decode cluster (``slot_reach[home]``, see ``SnapshotReader.slot_reach``; all slots when
    the home cluster is unknown, ``-1``)."""
    home = feats.home_cluster
    reach = slot_reach[home] if 0 <= home < len(slot_reach) else None
    return action_mask(slots, snap.slot_open, feats.cached_tokens, allow_reject, pulls, reach)


def decision_to_slot(decision: RouteDecision, slots: Sequence[Slot], sim: "Simulator | None" = None) -> int:
    """The slot index closest to ``decision`` (for evaluating heuristic routers through an env).

    Reject -> the reject slot; a pull -> the matching pull slot if present; an instance ->
    its instance slot (or its cluster's slot); a cluster without an instance -> its cluster
    slot, or, for a PD cluster laid out per instance, the instance the cluster's least-wait
    rule would pick now (needs ``sim``; else its first instance slot).
    """
    reject = len(slots) - 1
    if decision.reject:
        return reject
    c = decision.prefill_cluster
    if decision.pull_from is not None and decision.pull_from != c:
        for i, s in enumerate(slots):
            if s.kind == SLOT_PULL and s.cluster == c and s.pull_from == decision.pull_from:
                return i
    inst = decision.prefill_instance
    if inst is None and sim is not None and 0 <= c < len(sim.clusters):
        best = sim.clusters[c].pick_prefill_instance()
        inst = best.index if best is not None else None
    first = None
    for i, s in enumerate(slots):
        if s.cluster != c or s.kind == SLOT_PULL:
            continue
        if s.kind != SLOT_INSTANCE:
            return i
        if first is None:
            first = i
        if s.instance == inst:
            return i
    return first if first is not None else reject
