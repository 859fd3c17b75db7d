"""One serving instance (a group of GPUs running one model replica) in prefill or decode role.

Prefill: a FIFO queue served in steps that batch prompts under a token budget (optionally
chunking long ones); a prompt's prefix-cache hit is decided when it leaves the queue, and its
first token exists when its last chunk ends. Decode: continuous batching limited by KV memory and a max batch.
The decode batch is advanced analytically between membership changes (join, finish,
failure): it holds a step counter and each member's finishing step, so a request costs
O(log batch) whatever its output length, never one event per token.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from typing import TYPE_CHECKING

from prfaas_gym.sim.kernel import PRIO_COMPLETION, schedule

if TYPE_CHECKING:
    from prfaas_gym.sim.cluster import Cluster
    from prfaas_gym.sim.job import Job

PREFILL = "prefill"
DECODE = "decode"

UP = "up"
DRAINING = "draining"  # finishing its work before a role switch
SWITCHING = "switching"  # role switch delay
FAILED = "failed"


class Instance:
    """A model replica on ``gpus`` GPUs of its cluster."""

    def __init__(self, cluster: "Cluster", index: int, role: str) -> None:
        self.cluster = cluster
        sim = cluster.sim
        # hot-path shortcuts (mem_used_bytes runs several times per request)
        self._env = sim.env
        self._kv = sim.model.kv_bytes_per_token
        self._state = sim.model.state_bytes_per_request
        self.index = index
        self.role = role
        self.state = UP
        self.target_role = role
        # seconds spent serving each role (up or draining); see account_role
        self.role_time_s = {PREFILL: 0.0, DECODE: 0.0}
        self._role_since_s = 0.0
        self.epoch = 0  # bumped on failure: stale completions are ignored
        # prefill side
        self.queue: deque[Job] = deque()
        self.batch: list[Job] = []  # jobs in the current prefill step
        self.running: list[Job] = []  # jobs whose prefill started and has not ended
        self.busy_until_s = 0.0
        self.queued_tokens = 0
        self.queued_work_s = 0.0  # predicted prefill time of the queue and of unstarted chunks
        self.busy_s = 0.0  # time spent computing (utilisation)
        self.heap_version = 0  # see Cluster.prefill_key_changed
        self.decode_heap_version = 0  # see Cluster.decode_key_changed
        # prefill side KV held until the decode side has it (vLLM NIXL ``delay_free_blocks``)
        self.held_bytes = 0.0
        # decode side: KV memory = members' current context + reservations of bound jobs
        # (transfer in flight, waiting for a batch slot, or recomputing after preemption)
        self.mem_capacity_bytes = cluster.decode_mem_capacity_bytes
        self.reserved_bytes = 0.0
        self.bound: dict[int, Job] = {}  # rid -> job bound here but not in the batch
        self.waiting: deque[Job] = deque()  # KV arrived, waiting for a batch slot (FIFO)
        self.preemptions = 0
        self.rebind: list[Job] = []  # set by fail(): transfers that lost their reservation
        self.members: list[tuple[float, int, Job]] = []  # heap of (finish step, seq, job)
        self._seq = 0
        self.steps_done = 0.0
        self.step_s = 0.0
        self.ctx_base = 0.0  # sum(context at join - join step) over members
        self.last_update_s = 0.0
        self.decode_version = 0
        self.tokens_generated = 0.0
        self.batch_time_s = 0.0  # integral of the decode batch size over time

    def account_role(self, now_s: float) -> None:
        """Credit the time since the last change to the current role (call before any change)."""
        if self.state in (UP, DRAINING):
            self.role_time_s[self.role] += now_s - self._role_since_s
        self._role_since_s = now_s

    def __repr__(self) -> str:
        return f"Instance({self.cluster.name}/{self.index}, {self.role}, {self.state})"

    # ------------------------------------------------------------------ prefill
    @property
    def accepts_prefill(self) -> bool:
        """True when new prefill work may be routed here."""
        return self.role == PREFILL and self.state == UP

    def predicted_wait_s(self, now_s: float) -> float:
        """Predicted time before a newly queued request starts prefill."""
        busy = self.busy_until_s - now_s
        return (busy if busy > 0.0 else 0.0) + self.queued_work_s

    def enqueue(self, job: "Job") -> None:
        """Queue ``job`` for prefill and start a batch if idle."""
        job.prefill_inst = self
        self.queue.append(job)
        self.queued_tokens += job.est_new_tokens
        self.queued_work_s += job.prefill_estimate_s
        if not self.batch:
            self._start_batch()
        else:
            self.cluster.prefill_key_changed(self)

    def _start_batch(self) -> None:
        """Form and start one prefill step (vLLM ``Scheduler.schedule``, simplified).

        Prompts already being prefilled in chunks go first, then queued ones in FIFO order,
        under the token budget and the batch-size limit. A queued prompt is matched against
        the prefix cache as it leaves the queue (``Simulator._match_at_schedule``), so the
        budget counts its uncached tokens then. Without chunking a prompt that does not fit
        waits for the next step (one larger than the whole budget runs alone); with chunking
        it takes what is left of the budget, at most ``long_prefill_tokens``.
        """
        cluster = self.cluster
        sim = cluster.sim
        budget = cluster.max_batch_tokens
        max_seqs = cluster.max_prefill_batch
        chunked = cluster.chunked_prefill
        cap = cluster.long_prefill_tokens
        queue = self.queue
        batch: list[Job] = []
        tokens = 0
        for job in self.running:
            job.chunk_tokens = 0
        for job in self.running:  # chunked prompts in progress
            n = job.new_tokens - job.done_tokens
            if cap and n > cap:
                n = cap
            if n > budget - tokens:
                n = budget - tokens
            if n <= 0 or len(batch) >= max_seqs:
                break
            self.queued_work_s -= job.prefill_estimate_s * n / job.new_tokens
            job.chunk_tokens = n
            tokens += n
            batch.append(job)
        now = self._env._now
        started: list[Job] = []
        while queue and len(batch) < max_seqs and tokens < budget:
            job = queue[0]
            if not self.hold_fits(job):
                break  # backpressure: the KV held for transfers fills this instance
            sim._match_at_schedule(job)
            n = job.new_tokens
            if chunked:
                if cap and n > cap:
                    n = cap
                if n > budget - tokens:
                    n = budget - tokens
            elif batch and tokens + n > budget:
                break
            queue.popleft()
            self.queued_tokens -= job.est_new_tokens
            # a chunked prompt's later chunks stay in the predicted work until they start
            self.queued_work_s -= job.prefill_estimate_s * n / job.new_tokens
            job.done_tokens = 0
            job.chunk_tokens = n
            self.take_hold(job)
            tokens += n
            batch.append(job)
            self.running.append(job)
            started.append(job)
        if not queue:
            for j in self.running:  # (a loop: a generator costs more than its work here)
                if j.done_tokens + j.chunk_tokens < j.new_tokens:
                    break
            else:
                self.queued_work_s = 0.0  # nothing left to start: clear float drift
        self.batch = batch
        if not batch:
            return  # waits for held KV to leave (release_hold restarts it)
        job = batch[0]
        if len(batch) == 1 and job.chunk_tokens == job.new_tokens and job.new_tokens == job.est_new_tokens:
            duration = job.prefill_estimate_s  # the same prefill_s call, made at routing
        else:
            duration = cluster.stm.prefill_s([(j.chunk_tokens, j.cached_tokens + j.done_tokens) for j in batch])
        self.busy_until_s = now + duration
        self.busy_s += duration
        self.cluster.prefill_key_changed(self)
        for job in batch:
            if job.done_tokens:
                sim._on_prefill_step(job, duration)
        for job in started:
            sim._on_prefill_start(job, now, duration)
        schedule(sim.env, duration, PRIO_COMPLETION, self._on_batch_done, self.epoch)

    def _on_batch_done(self, event) -> None:
        if event._value != self.epoch:
            return
        batch, self.batch = self.batch, []
        sim = self.cluster.sim
        finished: list[Job] = []
        for job in batch:
            job.done_tokens += job.chunk_tokens
            if job.done_tokens >= job.new_tokens:
                finished.append(job)
            else:
                sim._on_prefill_chunk_done(job)
        if finished:
            self.running = [j for j in self.running if j.done_tokens < j.new_tokens]
        for job in finished:
            sim._on_prefill_done(job)
        if (self.running or self.queue) and self.role == PREFILL and self.state in (UP, DRAINING):
            self._start_batch()
        elif self.state == DRAINING and not self.queue:
            self.cluster._on_drained(self)

    def _hold_bytes(self, job: "Job") -> float:
        sim = self.cluster.sim
        return self._kv * job.req.input_tokens + self._state

    def hold_fits(self, job: "Job") -> bool:
        """Whether this instance can hold ``job``'s KV until the decode side has it."""
        return self.held_bytes <= 0.0 or self.held_bytes + self._hold_bytes(job) <= self.mem_capacity_bytes

    def take_hold(self, job: "Job") -> None:
        """Hold ``job``'s prompt KV from its prefill start until its transfer ends."""
        job.hold_bytes = self._hold_bytes(job)
        job.hold_inst = self
        self.held_bytes += job.hold_bytes

    def release_hold(self, job: "Job") -> None:
        """The decode side has ``job``'s KV: free it here (vLLM NIXL frees the delayed blocks
        once the decode side has read them) and resume prefill if that was the limit."""
        if job.hold_inst is not self:
            return
        job.hold_inst = None
        self.held_bytes -= job.hold_bytes
        if self.held_bytes < 1.0:
            self.held_bytes = 0.0
        if not self.batch and self.queue and self.role == PREFILL and self.state in (UP, DRAINING):
            self._start_batch()

    # ------------------------------------------------------------------ decode
    @property
    def accepts_decode(self) -> bool:
        """True when new decode work may be admitted here."""
        return self.role == DECODE and self.state == UP

    @property
    def batch_size(self) -> int:
        """Sequences decoding now."""
        return len(self.members)

    def mem_used(self) -> float:
        """Decode KV memory in use now: every member's context so far (prompt + generated
        tokens, growing one token per step) plus the reservations of bound jobs.
        (``mem_used_bytes`` is the same as a property; the method is cheaper to call.)"""
        n = len(self.members)
        if not n:
            return self.reserved_bytes
        steps = self.steps_done
        if self.step_s > 0.0:
            steps += (self._env._now - self.last_update_s) / self.step_s
        # context counts the first token, whose KV the first decode step writes
        return self._kv * (self.ctx_base + n * (steps - 1.0)) + n * self._state + self.reserved_bytes

    mem_used_bytes = property(mem_used, doc="Decode KV memory in use now (see ``mem_used``).")

    def reserve(self, job: "Job") -> None:
        """Bind ``job`` here and reserve its KV (SGLang pre-allocates before the transfer)."""
        job.decode_inst = self
        self.reserved_bytes += job.mem_bytes
        self.bound[job.req.rid] = job

    def unreserve(self, job: "Job") -> None:
        """Drop ``job``'s reservation (it was re-routed, or joins the batch)."""
        if self.bound.pop(job.req.rid, None) is not None:
            self.reserved_bytes -= job.mem_bytes
            if not self.bound:
                self.reserved_bytes = 0.0  # clear float drift

    def room_for(self, job: "Job") -> bool:
        """Whether ``job`` (its KV reserved here) may join the batch now: a free slot, and
        room to grow by ``decode_growth_tokens`` (admission by current context: the output
        length is unknown)."""
        if len(self.members) >= self.cluster.decode_max_batch:
            return False
        extra = 0.0 if job.req.rid in self.bound else job.mem_bytes
        growth = self._kv * self.cluster.decode_growth_tokens
        return self.mem_used() + extra + growth <= self.mem_capacity_bytes

    def _advance_decode(self, now_s: float) -> None:
        if self.members and self.step_s > 0.0:
            dt = now_s - self.last_update_s
            steps = dt / self.step_s
            self.steps_done += steps
            self.tokens_generated += steps * len(self.members)
            self.batch_time_s += dt * len(self.members)
        self.last_update_s = now_s

    def context_tokens(self) -> float:
        """Total KV context across the decode batch now (after the last update)."""
        return self.ctx_base + len(self.members) * self.steps_done

    def admit(self, job: "Job") -> None:
        """Add ``job`` to the decode batch (caller checked ``room_for``)."""
        sim = self.cluster.sim
        now = self._env._now
        self._advance_decode(now)
        self.unreserve(job)
        job.decode_inst = self
        # the first token came with prefill; a resumed request keeps what it generated
        context = job.req.input_tokens + 1 + job.generated
        job.join_step = self.steps_done
        job.context_at_join = context
        self.ctx_base += context - self.steps_done
        self._seq += 1
        heapq.heappush(self.members, (self.steps_done + job.decode_steps, self._seq, job))
        self._reschedule_decode(now)
        self.cluster.decode_key_changed(self)

    def _reschedule_decode(self, now_s: float) -> None:
        self.decode_version += 1
        members = self.members
        if not members:
            self.step_s = 0.0
            return
        n = len(members)
        steps_left = members[0][0] - self.steps_done
        if steps_left < 0.0:
            steps_left = 0.0
        # evaluate the step time at the mean context over the coming interval
        ctx_mid = self.ctx_base + n * (self.steps_done + 0.5 * steps_left)
        self.step_s = self.cluster.stm.decode_s(n, int(ctx_mid))
        # the batch's KV grows by n tokens per step: stop when memory would run out
        sim = self.cluster.sim
        if (n > 1 or self.reserved_bytes > 0.0) and self._kv > 0.0:
            grow = self._kv * n
            to_full = (self.mem_capacity_bytes * (1.0 - 1e-7) - self.mem_used() - grow) / grow
            if to_full < steps_left:
                steps_left = to_full if to_full > 0.0 else 0.0
        schedule(sim.env, steps_left * self.step_s, PRIO_COMPLETION, self._on_decode_event, self.decode_version)

    def _on_decode_event(self, event) -> None:
        if event._value != self.decode_version:
            return
        sim = self.cluster.sim
        now = self._env._now
        self._advance_decode(now)
        members = self.members
        limit = self.steps_done + 1e-6
        finished: list[Job] = []
        while members and members[0][0] <= limit:
            _, _, job = heapq.heappop(members)
            self._remove_accounting(job)
            finished.append(job)
        self._preempt_if_full()
        self._reschedule_decode(now)
        self.cluster.decode_key_changed(self)
        for job in finished:
            sim._on_decode_done(job)
        self.cluster._on_decode_freed(self)

    def _remove_accounting(self, job: "Job") -> None:
        self.ctx_base -= job.context_at_join - job.join_step
        if not self.members:
            self.ctx_base = 0.0

    def _preempt_if_full(self) -> None:
        """Preempt by recompute while the next step's KV does not fit: the newest member
        goes first (vLLM ``allocate_slots`` failure -> ``running.pop()`` ->
        ``_preempt_request``; SGLang ``retract_decode``). Its KV is freed; it keeps the tokens
        it generated and waits at the head of the queue to recompute its context."""
        sim = self.cluster.sim
        kv = self._kv
        members = self.members
        limit = self.mem_capacity_bytes * (1.0 - 1e-6)
        while members and (len(members) > 1 or self.reserved_bytes > 0.0) \
                and self.mem_used() + kv * len(members) > limit:
            k = max(range(len(members)), key=lambda i: members[i][1])
            _, _, job = members[k]
            members[k] = members[-1]
            members.pop()
            heapq.heapify(members)
            self._remove_accounting(job)
            done = self.steps_done - job.join_step
            job.decode_steps -= done
            job.generated += done
            job.mem_bytes = kv * (job.req.input_tokens + job.generated) + self._state
            job.recompute = True
            job.req.preemptions += 1
            self.preemptions += 1
            sim.preemptions += 1
            self.waiting.appendleft(job)
            self.cluster.n_slot_waiting += 1

    # ------------------------------------------------------------------ faults
    def fail(self) -> list["Job"]:
        """Fail now: return every job this instance held (queued, prefilling or decoding)."""
        now = self._env._now
        self._advance_decode(now)
        self.account_role(now)
        self.epoch += 1
        self.decode_version += 1
        lost = list(self.running) + list(self.queue) + [m[2] for m in self.members] + list(self.waiting)
        # reservations of transfers still in flight: those requests only need a new one
        waiting = set(id(j) for j in self.waiting)
        for j in self.bound.values():
            if id(j) in waiting:
                continue
            if math.isnan(j.req.transfer_end_s):
                self.rebind.append(j)
            else:
                lost.append(j)  # recomputing after a preemption: its KV is gone
        for job in self.running:
            self.release_hold(job)
        self.cluster.n_slot_waiting -= len(self.waiting)
        self.batch, self.running, self.members = [], [], []
        self.queue.clear()
        self.waiting.clear()
        self.bound.clear()
        self.queued_tokens, self.queued_work_s = 0, 0.0
        self.reserved_bytes, self.ctx_base, self.step_s = 0.0, 0.0, 0.0
        self.busy_until_s = now
        self.state = FAILED
        return lost
