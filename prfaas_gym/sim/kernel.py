"""Callback-style scheduling on top of SimPy's event queue.

Every event is ordered by ``(time, priority, sequence)``: SimPy's own heap key, where the
sequence number is the environment's insertion counter. Priorities (lower runs first) are
fixed here so that same-time events resolve the same way in every run:

=====================  =========  ==========================================================
name                   priority   what
=====================  =========  ==========================================================
``PRIO_COMPLETION``    0          prefill end, KV/prefix transfer end, decode finish, role switch
``PRIO_ENVIRONMENT``   1          faults, recoveries, link bandwidth changes
``PRIO_CONTROL``       2          provisioner and controller ticks
``PRIO_ARRIVAL``       3          request arrivals (see the state left by everything above)
=====================  =========  ==========================================================

No generator processes are used: a callback is a bound method (so simulator state pickles),
and stale callbacks are ignored through version counters rather than cancelled. Entries go
straight onto SimPy's heap, ``(time, priority, env._eid, Call)``, the layout
``Environment.schedule`` uses, so ``env.step()`` and ``env.run()`` process them as usual.
"""

from __future__ import annotations

from heapq import heappush
from typing import Any, Callable

import simpy

class SimEnvironment(simpy.Environment):
    """``simpy.Environment`` that pickles: SimPy binds its event classes onto the instance
    (``BoundClass.bind_early``), which do not survive a round trip; this subclass leaves them
    on the class, where attribute lookup finds them all the same."""


PRIO_COMPLETION = 0
PRIO_ENVIRONMENT = 1
PRIO_CONTROL = 2
PRIO_ARRIVAL = 3


class Call:
    """A scheduled callback: the light event this simulator puts on SimPy's queue.

    It has what SimPy's ``Environment.step`` reads (``callbacks``, ``_ok``) and what our
    handlers read (``_value``), without the bookkeeping of a full ``simpy.Event``.
    """

    __slots__ = ("callbacks", "_value")
    _ok = True

    def __init__(self, callback: Callable[["Call"], Any], value: Any) -> None:
        self.callbacks = [callback]
        self._value = value

    @property
    def value(self) -> Any:
        """The value given when scheduling."""
        return self._value


_new_call = object.__new__


def schedule(
    env: simpy.Environment,
    delay_s: float,
    priority: int,
    callback: Callable[[Call], Any],
    value: Any = None,
) -> None:
    """Run ``callback(call)`` after ``delay_s`` simulated seconds; ``call.value`` is ``value``."""
    call = _new_call(Call)  # Call(callback, value) without the cost of a Python __init__ frame
    call.callbacks = [callback]
    call._value = value
    heappush(env._queue, (env._now + (delay_s if delay_s > 0.0 else 0.0), priority, next(env._eid), call))  # type: ignore[attr-defined]


def schedule_at(
    env: simpy.Environment,
    time_s: float,
    priority: int,
    callback: Callable[[Call], Any],
    value: Any = None,
) -> None:
    """Like :func:`schedule` at the absolute time ``time_s`` (exact: ``now + (t - now)`` may
    round to a different float)."""
    heappush(env._queue, (max(time_s, env._now), priority, next(env._eid), Call(callback, value)))  # type: ignore[attr-defined]
