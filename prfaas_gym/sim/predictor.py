"""Output-length prediction: what a scheduler may know about a request's output before it ends.

Real engines do not know how many tokens a request will generate (vLLM and SGLang admit and
reserve KV by the current context and preempt when it outgrows memory). A policy that needs an
estimate asks ``Simulator.length_predictor.predict(req)``; the true length is never an input to
a simulator decision (the API-level ``max_tokens`` check aside, see ``Simulator._dispatch``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from prfaas_gym.workload.request import Request


class LengthPredictor:
    """Running mean of the output lengths of requests completed so far (a prior until then).

    Deliberately simple and causal: it learns only from requests that have ended, so it can
    be used live. ``prior_tokens`` is the estimate before any request has completed.
    """

    def __init__(self, prior_tokens: float = 256.0) -> None:
        self.prior_tokens = float(prior_tokens)
        self.n = 0
        self.total = 0.0

    def observe(self, req: "Request") -> None:
        """Learn from a completed request."""
        self.n += 1
        self.total += req.output_tokens

    def predict(self, req: "Request") -> float:
        """Predicted output tokens of ``req`` (it must not have ended yet)."""
        return self.total / self.n if self.n else self.prior_tokens
