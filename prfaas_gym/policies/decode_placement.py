"""Decode placement across PD clusters (regions): keep decode at home, or spill it to the
least-loaded region when home's decode batch is full.

Mooncake's Conductor picks a prefill *and* a decode instance per request, the decode one by
its load against the TBT SLO (Mooncake, FAST'25, Algorithm 1 "KVCache-centric scheduling";
the open-source Conductor design in kvcache-ai/Mooncake#977 assigns "one Prefill Instance
and one Decode Instance" per request). Across regions the same choice trades a KV transfer
over an inter-region link for a free decode slot: :class:`DecodePlacement` makes it.

Load of a PD cluster = (requests decoding + waiting for a decode slot + those this router
sent there that have not started decoding yet) / its decode slots. The last term is
router-side accounting, as a live router keeps it (Dynamo's KV router counts the requests it
has routed to each worker until they finish): the simulator's queues do not show requests
still in prefill or KV transfer. Decode stays at home while home's load is under
``spill_at``; beyond it, the least-loaded connected PD cluster takes it when its load is
lower than home's.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from prfaas_gym.sim.simulator import Simulator
    from prfaas_gym.workload.request import Request

MODES = ("home", "least-loaded")


class DecodePlacement:
    """Chooses the decode cluster of a routed request (module docstring).

    Args:
        mode: ``home`` (always the request's home PD cluster: the simulator's default) or
            ``least-loaded`` (spill past ``spill_at``).
        spill_at: home decode load (fraction of its decode slots) from which decode may be
            placed in another region.
    """

    def __init__(self, mode: str = "home", spill_at: float = 1.0) -> None:
        if mode not in MODES:
            raise ValueError(f"decode_placement: expected one of {', '.join(MODES)}, got {mode!r}")
        if not spill_at > 0:
            raise ValueError("decode_spill_at: must be > 0")
        self.mode = mode
        self.spill_at = float(spill_at)
        self._sent: dict[int, list["Request"]] = {}  # decode cluster -> routed, not yet decoding

    def load(self, view: "Simulator", cluster: int) -> float:
        """(decoding + waiting + sent here and not yet decoding) / decode slots."""
        c = view.clusters[cluster]
        slots = sum(c.decode_max_batch for inst in c.instances if inst.accepts_decode)
        sent = self._sent.get(cluster)
        if sent:  # drop those that started decoding or were refused
            sent[:] = [r for r in sent if math.isnan(r.decode_start_s) and not r.rejected]
        busy = sum(inst.batch_size for inst in c.instances) + len(c.decode_queue) + len(sent or ())
        return busy / slots if slots else math.inf

    def choose(self, req: "Request", view: "Simulator", prefill_cluster: int) -> int | None:
        """The decode cluster for ``req`` prefilled on ``prefill_cluster`` (``None``: home)."""
        if self.mode == "home" or len(view.pd_clusters) < 2:
            return None
        home = view.home_cluster(req)
        home_load = self.load(view, home)
        if home_load < self.spill_at:
            return None
        others = [c for c in view.pd_clusters if c != home and view.connected(prefill_cluster, c)]
        if not others:
            return None
        best = min(others, key=lambda c: (self.load(view, c), c))
        return best if self.load(view, best) < home_load else None

    def record(self, req: "Request", view: "Simulator", decode_cluster: int | None) -> None:
        """Count ``req`` as bound for ``decode_cluster`` (``None``: home) until it decodes."""
        if self.mode == "home":
            return
        d = view.home_cluster(req) if decode_cluster is None else decode_cluster
        self._sent.setdefault(d, []).append(req)
