"""A cluster: instances of one hardware type in one datacenter, with its prefix-cache pool.

``kind == "prefill_only"`` is a PrfaaS cluster (stateless KV producer); ``kind == "pd"`` is a
local PD cluster whose instances split between prefill and decode roles, switching roles
through drain -> switch delay -> new role.
"""

from __future__ import annotations

import heapq
from collections import deque
from typing import TYPE_CHECKING

from prfaas_gym.sim.cache import PrefixCache
from prfaas_gym.sim.instance import DECODE, DRAINING, FAILED, PREFILL, SWITCHING, UP, Instance
from prfaas_gym.sim.kernel import PRIO_COMPLETION, schedule
from prfaas_gym.workload.request import BLOCK_TOKENS

if TYPE_CHECKING:
    from prfaas_gym.scenario.spec import ClusterSpec
    from prfaas_gym.sim.job import Job
    from prfaas_gym.sim.simulator import Simulator

PREFILL_ONLY = "prefill_only"
PD = "pd"
DECODE_GROWTH_TOKENS = 512


class DecodeBacklog:
    """``len()``: requests waiting for decode, for a KV reservation or for a batch slot."""

    __slots__ = ("cluster",)

    def __init__(self, cluster: "Cluster") -> None:
        self.cluster = cluster

    def __len__(self) -> int:
        return len(self.cluster.prealloc) + self.cluster.n_slot_waiting


class Cluster:
    """Runtime state of one cluster."""

    def __init__(self, sim: "Simulator", index: int, spec: "ClusterSpec", stm) -> None:
        self.sim = sim
        self.index = index
        self.spec = spec
        self.name = spec.name
        self.datacenter = spec.datacenter
        self.kind = spec.kind
        self.stm = stm
        self.max_batch_tokens = spec.max_batch_tokens
        self.max_prefill_batch = spec.max_prefill_batch
        self.chunked_prefill = spec.chunked_prefill
        self.long_prefill_tokens = spec.long_prefill_tokens
        self.max_queue_requests = spec.max_queue_requests
        self.decode_max_batch = spec.decode_max_batch
        model = sim.model
        hw = spec.hardware
        self.gpus_per_instance = spec.gpus_per_instance
        self.decode_mem_capacity_bytes = (
            hw.hbm_capacity_bytes * spec.gpus_per_instance * (1.0 - spec.kv_reserve_fraction)
            - model.weight_bytes
        )
        n_prefill = spec.prefill_instances
        self.instances = [
            Instance(self, i, PREFILL if i < n_prefill else DECODE) for i in range(spec.instances)
        ]
        self.cache: PrefixCache | None = None
        if spec.prefix_cache_bytes > 0:
            self.cache = PrefixCache(
                spec.prefix_cache_bytes,
                block_bytes=model.kv_bytes_per_token * BLOCK_TOKENS,
                state_bytes=model.state_bytes_per_request,
                needs_state=model.is_hybrid,
                snapshot_interval_blocks=spec.snapshot_interval_blocks,
            )
        # jobs waiting for decode KV memory before their transfer may start (SGLang's
        # PreallocQueue), as (job, epoch); jobs waiting for a batch slot wait on their instance
        self.prealloc: deque[tuple[Job, int]] = deque()
        self.n_slot_waiting = 0
        self.decode_queue = DecodeBacklog(self)
        # KV growth room (tokens) a request needs to join a decode batch (SGLang reserves
        # decode tokens per running request, ``num_reserved_decode_tokens``)
        self.decode_growth_tokens = DECODE_GROWTH_TOKENS
        # lazy heap of (-free KV bytes, index, version) over decode instances with batch room
        self._decode_heap: list[tuple[float, int, int]] = []
        # lazy min-heap of (predicted free time, index, version) over prefill instances
        self._prefill_heap: list[tuple[float, int, int]] = []
        for inst in self.instances:
            self.instance_changed(inst)
        self.role_switches = 0

    def __repr__(self) -> str:
        return f"Cluster({self.name!r}, {self.kind}, dc={self.datacenter!r})"

    # ------------------------------------------------------------------ queries
    @property
    def is_prfaas(self) -> bool:
        """True for a prefill-only (PrfaaS) cluster."""
        return self.kind == PREFILL_ONLY

    @property
    def prefill_instances(self) -> list[Instance]:
        """Instances accepting prefill work now."""
        return [i for i in self.instances if i.accepts_prefill]

    @property
    def decode_instances(self) -> list[Instance]:
        """Instances accepting decode work now."""
        return [i for i in self.instances if i.accepts_decode]

    def prefill_up(self) -> bool:
        """Whether any instance takes prefill work now (``has_prefill_capacity``, as a method:
        cheaper to call)."""
        for i in self.instances:
            if i.role == PREFILL and i.state == UP:  # i.accepts_prefill, inlined
                return True
        return False

    has_prefill_capacity = property(prefill_up, doc="Whether any instance takes prefill work now.")

    def prefill_count(self) -> int:
        """Instances in (or switching to) the prefill role, failed ones excluded."""
        return sum(1 for i in self.instances if i.state != FAILED and i.target_role == PREFILL)

    def pick_prefill_instance(self) -> Instance | None:
        """The prefill instance predicted to be free first (ties: lowest index).

        O(log n): a lazy heap keyed by ``busy_until + queued work`` (an idle instance's key
        lies in the past, so it wins), refreshed whenever an instance's queue changes.
        """
        heap = self._prefill_heap
        instances = self.instances
        while heap:
            _, idx, version = heap[0]
            inst = instances[idx]
            if version == inst.heap_version and inst.role == PREFILL and inst.state == UP:
                return inst
            heapq.heappop(heap)
        return None

    def instance_changed(self, inst: Instance) -> None:
        """Re-key ``inst`` in both heaps after a role or state change."""
        self.prefill_key_changed(inst)
        self.decode_key_changed(inst)

    def prefill_key_changed(self, inst: Instance) -> None:
        """Re-key ``inst`` in the prefill heap (call after its queue or busy time changes)."""
        inst.heap_version += 1
        heap = self._prefill_heap
        if inst.role == PREFILL and inst.state == UP:
            heapq.heappush(heap, (inst.busy_until_s + inst.queued_work_s, inst.index, inst.heap_version))
        if len(heap) > 4 * len(self.instances) + 64:  # drop stale entries now and then
            self._prefill_heap = [e for e in heap if e[2] == self.instances[e[1]].heap_version]
            heapq.heapify(self._prefill_heap)

    def min_prefill_wait_s(self) -> float:
        """Predicted queueing delay at the best prefill instance (inf if none)."""
        inst = self.pick_prefill_instance()
        return inst.predicted_wait_s(self.sim.env._now) if inst is not None else float("inf")

    def queued_prefill_requests(self) -> int:
        """Requests waiting (not yet prefilling) on this cluster's prefill instances."""
        return sum(len(i.queue) for i in self.instances)

    # ------------------------------------------------------------------ decode admission
    def request_reservation(self, job: "Job") -> None:
        """Reserve ``job``'s decode KV before its transfer starts (SGLang PreallocQueue:
        "pre-allocate kv once there is available kv"); FIFO, so a full cluster holds the
        transfers back (backpressure) and the prefill side keeps their KV meanwhile."""
        job.decode_cluster = self
        self.prealloc.append((job, job.epoch))
        self._reserve_waiting()

    def _best_decode_instance(self) -> Instance | None:
        # the decode instance with the most free KV memory, through a lazy heap
        heap = self._decode_heap
        instances = self.instances
        while heap:
            _, idx, version = heap[0]
            inst = instances[idx]
            if version == inst.decode_heap_version:
                return inst
            heapq.heappop(heap)
        return None

    def _reserve_waiting(self) -> None:
        queue = self.prealloc
        sim = self.sim
        growth = sim.kv_bytes_per_token * self.decode_growth_tokens
        while queue:
            job, epoch = queue[0]
            if epoch != job.epoch:
                queue.popleft()
                continue
            inst = self._best_decode_instance()
            if inst is None:
                return
            # leave room for the batch there to grow (as SGLang's prealloc does); an empty
            # instance takes any request (too_long was checked at routing)
            room = inst.mem_capacity_bytes - inst.mem_used() - growth * (len(inst.members) + 1)
            if job.mem_bytes > room and (inst.members or inst.bound):
                return
            queue.popleft()
            inst.reserve(job)
            self.decode_key_changed(inst)
            sim._on_reserved(job)

    def enqueue_decode(self, job: "Job") -> None:
        """``job``'s KV has arrived on its instance: join the batch, or wait for a slot (FIFO)."""
        inst = job.decode_inst
        if not inst.waiting and inst.room_for(job):
            self.sim._on_decode_start(job)
            inst.admit(job)
            return
        inst.waiting.append(job)
        self.n_slot_waiting += 1

    def decode_key_changed(self, inst: Instance) -> None:
        """Re-key ``inst`` in the decode heap (call after its batch or memory changes)."""
        inst.decode_heap_version += 1
        heap = self._decode_heap
        if inst.role == DECODE and inst.state == UP:
            free = inst.mem_capacity_bytes - inst.mem_used()
            heapq.heappush(heap, (-free, inst.index, inst.decode_heap_version))
        if len(heap) > 4 * len(self.instances) + 64:
            self._decode_heap = [e for e in heap if e[2] == self.instances[e[1]].decode_heap_version]
            heapq.heapify(self._decode_heap)

    def _admit_waiting(self, inst: Instance) -> None:
        # FIFO on the instance; a preempted request first recomputes its context
        waiting = inst.waiting
        while waiting and inst.room_for(waiting[0]):
            job = waiting.popleft()
            self.n_slot_waiting -= 1
            if job.recompute:
                job.recompute = False
                inst.reserve(job)
                delay = self.stm.prefill_s([(job.req.input_tokens + job.generated, 0)])
                schedule(self.sim.env, delay, PRIO_COMPLETION, self._on_recomputed, (job, job.epoch, inst.epoch))
            else:
                self.sim._on_decode_start(job)
                inst.admit(job)

    def _on_recomputed(self, event) -> None:
        job, epoch, inst_epoch = event._value
        inst = job.decode_inst
        if epoch != job.epoch or inst is None or inst.epoch != inst_epoch:
            return
        inst.admit(job)

    def _on_decode_freed(self, inst: Instance) -> None:
        if inst.waiting:
            self._admit_waiting(inst)
        if inst.state == DRAINING and not inst.members and not inst.bound and not inst.waiting:
            self._on_drained(inst)
        if self.prealloc:
            self._reserve_waiting()

    # ------------------------------------------------------------------ roles
    def set_prefill_count(self, target: int) -> None:
        """Move instances between roles so that ``target`` serve prefill (drain, delay, switch)."""
        target = max(0, min(target, len(self.instances)))
        current = self.prefill_count()
        if self.kind != PD or target == current:
            return
        if target > current:
            to_switch = sorted(
                (i for i in self.instances if i.state == UP and i.role == DECODE),
                key=lambda i: (len(i.members), i.index),
            )[: target - current]
            new_role = PREFILL
        else:
            to_switch = sorted(
                (i for i in self.instances if i.state == UP and i.role == PREFILL),
                key=lambda i: (len(i.queue) + len(i.running), i.index),
            )[: current - target]
            new_role = DECODE
        for inst in to_switch:
            inst.target_role = new_role
            inst.state = DRAINING
            self.instance_changed(inst)
            self.role_switches += 1
            idle = not inst.members if inst.role == DECODE else not (inst.running or inst.queue)
            if idle:
                self._on_drained(inst)

    def _on_drained(self, inst: Instance) -> None:
        inst.account_role(self.sim.env._now)
        inst.state = SWITCHING
        self.instance_changed(inst)
        schedule(self.sim.env, self.sim.scenario.switch_delay_s, PRIO_COMPLETION, self._on_switched, inst)

    def _on_switched(self, event) -> None:
        inst: Instance = event._value
        if inst.state != SWITCHING:
            return  # failed meanwhile
        inst.account_role(self.sim.env._now)
        inst.role = inst.target_role
        inst.state = UP
        inst.steps_done = 0.0
        inst.last_update_s = self.sim.env._now
        self.instance_changed(inst)
        if inst.role == DECODE:
            self._reserve_waiting()

    # ------------------------------------------------------------------ faults
    def fail_instance(self, idx: int) -> list["Job"]:
        """Fail instance ``idx``; return the jobs it held so the simulator can re-route them."""
        inst = self.instances[idx]
        if inst.state == FAILED:
            return []
        lost = inst.fail()
        self.instance_changed(inst)
        return lost

    def recover_instance(self, idx: int) -> None:
        """Bring instance ``idx`` back in its target role."""
        inst = self.instances[idx]
        if inst.state != FAILED:
            return
        inst.account_role(self.sim.env._now)
        inst.role = inst.target_role
        inst.state = UP
        inst.last_update_s = self.sim.env._now
        inst.steps_done = 0.0
        self.instance_changed(inst)
        if inst.role == DECODE:
            self._reserve_waiting()
