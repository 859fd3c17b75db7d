"""The paper's case study (PAPER.md, "Case study") as ready-made ``PlannerInputs``.

Inputs only, as the paper states them or as PAPER.md derives them:

* PrfaaS: 4 instances of 8xH200; prefill time piecewise-linear in the Table 5 points
  (1K/8K/32K/128K tokens -> 0.44/0.72/1.84/7.40 s), extended linearly beyond the end points.
* Local PD: 8 instances of 8xH20; T_H20(l) = 0.4691 + 1.3004e-4 l + 2.940e-10 l^2 s (derived).
* KV: S_kv(l) = 174 MiB + 17.2 kB * l (derived from Table 5's S_kv).
* Decode: BS_max = 20 at T_decode = 25 ms (40 tok/s SLO); L_out = 1024.
* B_out = 100 Gbps; lengths log-normal(9.90, 1.00) truncated to [128, 131072].
"""

from __future__ import annotations

import numpy as np

from .inputs import PlannerInputs, lognormal_lengths

TABLE5_TOKENS = np.array([1024.0, 8192.0, 32768.0, 131072.0])
TABLE5_PREFILL_S = np.array([0.44, 0.72, 1.84, 7.40])
TABLE5_KV_MIB = np.array([190.8, 308.9, 701.3, 2316.3])
H20_PREFILL_COEFFS = (0.4691, 1.3004e-4, 2.940e-10)
KV_STATE_BYTES = 174 * 2**20
KV_BYTES_PER_TOKEN = 17.2e3


def piecewise_linear(xs: np.ndarray, ys: np.ndarray):
    """A vectorised piecewise-linear interpolant through (xs, ys), linear beyond both ends."""
    xs = np.asarray(xs, dtype=float)
    ys = np.asarray(ys, dtype=float)
    lo_slope = (ys[1] - ys[0]) / (xs[1] - xs[0])
    hi_slope = (ys[-1] - ys[-2]) / (xs[-1] - xs[-2])

    def f(l):
        x = np.asarray(l, dtype=float)
        y = np.interp(x, xs, ys)
        y = np.where(x < xs[0], ys[0] + lo_slope * (x - xs[0]), y)
        return np.where(x > xs[-1], ys[-1] + hi_slope * (x - xs[-1]), y)

    return f


def h200_prefill_s(l):
    """One 8xH200 instance's prefill time, Table 5 interpolated (seconds)."""
    return piecewise_linear(TABLE5_TOKENS, TABLE5_PREFILL_S)(l)


def h20_prefill_s(l):
    """One 8xH20 instance's prefill time, PAPER.md's derived quadratic (seconds)."""
    a, b, c = H20_PREFILL_COEFFS
    x = np.asarray(l, dtype=float)
    return a + b * x + c * x * x


def case_study_kv_bytes(l):
    """S_kv(l) = 174 MiB of KDA state + 17.2 kB per token (bytes)."""
    return KV_STATE_BYTES + KV_BYTES_PER_TOKEN * np.asarray(l, dtype=float)


def case_study_inputs(n_samples: int = 4096) -> PlannerInputs:
    """The PrfaaS-PD deployment of the case study (4 PrfaaS + 8 PD instances)."""
    return PlannerInputs(
        prfaas_prefill_s=h200_prefill_s,
        pd_prefill_s=h20_prefill_s,
        kv_bytes=case_study_kv_bytes,
        n_prfaas=4,
        n_pd_total=8,
        b_out_bytes_s=100e9 / 8,
        bs_max=20,
        t_decode_s=0.025,
        l_out_tokens=1024,
        lengths_tokens=lognormal_lengths(9.90, 1.00, 128, 131072, n_samples),
        prfaas_gpus_per_instance=8,
        pd_gpus_per_instance=8,
    )
