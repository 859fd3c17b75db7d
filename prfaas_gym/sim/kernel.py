"""Callback-style scheduling on top of SimPy's event queue.

Every event is ordered by ``(time, priority, sequence)``: SimPy's own heap key, where the
sequence number is the environment's insertion counter. Priorities (lower runs first) are
fixed here so that same-time events resolve the same way in every run:

=====================  =========  ==========================================================
name                   priority   what
=====================  =========  ==========================================================
``PRIO_COMPLETION``    0          prefill end, transfer end, decode finish, role switch
``PRIO_ENVIRONMENT``   1          faults, recoveries, link bandwidth changes
``PRIO_CONTROL``       2          provisioner and controller ticks
``PRIO_ARRIVAL``       3          request arrivals (see the state left by everything above)
=====================  =========  ==========================================================

No generator processes are used: a callback is a bound method (so simulator state pickles),
and stale callbacks are ignored through version counters rather than cancelled.
"""

from __future__ import annotations

from heapq import heappush
from typing import Any, Callable

import simpy
from simpy.events import Event

class SimEnvironment(simpy.Environment):
    """``simpy.Environment`` that pickles: SimPy binds its event classes onto the instance
    (``BoundClass.bind_early``), which do not survive a round trip; this subclass leaves them
    on the class, where attribute lookup finds them all the same."""


PRIO_COMPLETION = 0
PRIO_ENVIRONMENT = 1
PRIO_CONTROL = 2
PRIO_ARRIVAL = 3


def schedule(
    env: simpy.Environment,
    delay_s: float,
    priority: int,
    callback: Callable[[Event], Any],
    value: Any = None,
) -> None:
    """Run ``callback(event)`` after ``delay_s`` simulated seconds; ``event.value`` is ``value``."""
    event = Event(env)
    event._ok = True
    event._value = value
    event.callbacks.append(callback)  # type: ignore[union-attr]
    env.schedule(event, priority, delay_s if delay_s > 0.0 else 0.0)


def schedule_at(
    env: simpy.Environment,
    time_s: float,
    priority: int,
    callback: Callable[[Event], Any],
    value: Any = None,
) -> None:
    """Like :func:`schedule` at the absolute time ``time_s`` (exact: ``now + (t - now)`` may
    round to a different float). Uses SimPy's queue layout ``(time, priority, eid, event)``."""
    event = Event(env)
    event._ok = True
    event._value = value
    event.callbacks.append(callback)  # type: ignore[union-attr]
    heappush(env._queue, (max(time_s, env.now), priority, next(env._eid), event))  # type: ignore[attr-defined]
