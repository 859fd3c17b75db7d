"""Named random sub-streams of one seed: ``np.random.SeedSequence(seed, spawn_key=(k,))``."""

from __future__ import annotations

import numpy as np

STREAM_WORKLOAD = 0
STREAM_HOME = 1
STREAM_BANDWIDTH = 2  # + 16 x (link index + 1): one stream per link
STREAM_POLICY = 3


def rng_stream(seed: int, stream: int) -> np.random.Generator:
    """The named random sub-stream ``stream`` of ``seed``."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(stream,)))
