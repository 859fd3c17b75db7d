"""Polynomial back-end: ``T(l) = c0 + c1*l + c2*l**2`` per sequence (e.g. the paper's derived H20 curve).

Batch rule: ``sum_i T(l_i) - (k - 1) * c0`` (the fixed term ``c0`` is paid once per step).
Cached prefix ``c``: ``c0 + T(n + c) - T(c)``, i.e. the linear term for the new tokens and the
quadratic (attention) term for the new tokens against the whole prefix.
Decode: ``decode_step_s + decode_s_per_seq * batch + decode_s_per_context_token * context``.
"""

from __future__ import annotations

from collections.abc import Sequence

from .base import PerfInputError


class PolynomialModel:
    """Quadratic prefill curve per sequence and a fixed/linear decode step."""

    def __init__(self, coeffs: Sequence[float], decode_step_s: float, decode_s_per_context_token: float = 0.0,
                 decode_s_per_seq: float = 0.0, source: str = "step_time") -> None:
        c = [float(v) for v in coeffs]
        if len(c) != 3 or any(v < 0 for v in c) or sum(c) <= 0:
            raise PerfInputError(f"{source}.prefill_s: expected three non-negative coefficients [c0, c1, c2]")
        if not decode_step_s > 0:
            raise PerfInputError(f"{source}.decode_step_s: must be positive, got {decode_step_s!r}")
        self.c0, self.c1, self.c2 = c
        self.decode_step_s = float(decode_step_s)
        self.decode_s_per_context_token = float(decode_s_per_context_token)
        self.decode_s_per_seq = float(decode_s_per_seq)

    def curve_s(self, tokens: float) -> float:
        """``T(tokens)`` for one uncached sequence."""
        return self.c0 + self.c1 * tokens + self.c2 * tokens * tokens

    def prefill_s(self, seqs: Sequence[tuple[int, int]]) -> float:
        """One batched prefill step (see module docstring for the batch and prefix rules)."""
        total = 0.0
        k = 0
        for n, c in seqs:
            if n > 0:
                total += self.c1 * n + self.c2 * ((n + c) * (n + c) - c * c)
                k += 1
        return total + self.c0 if k else 0.0

    def decode_s(self, batch: int, context_tokens: int) -> float:
        """Fixed step plus optional linear terms in batch and context."""
        if batch <= 0:
            return 0.0
        return (self.decode_step_s + self.decode_s_per_seq * batch
                + self.decode_s_per_context_token * context_tokens)
