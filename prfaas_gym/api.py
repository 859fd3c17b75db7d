"""The Python API in a few calls: load a scenario, build a simulator with a policy, run it,
and get the summary and per-request records.

>>> from prfaas_gym.api import simulate_scenario
>>> summary = simulate_scenario("paper/prfaas_pd", n_requests=200).summary()
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from prfaas_gym.scenario import Scenario, load_scenario
from prfaas_gym.sim import Simulator
from prfaas_gym.workload.request import Request


def build_simulator(
    scenario: str | Path | Scenario,
    policy: Any = None,
    provisioner: Any = None,
    *,
    seed: int | None = None,
    data_dir: str | Path | None = None,
    n_requests: int | None = None,
    rate_rps: float | None = None,
    duration_s: float | None = None,
    requests: Sequence[Request] | None = None,
    trust_pickle: bool = False,
) -> Simulator:
    """A ready-to-run simulator. ``policy``/``provisioner``: a registered name, a spec mapping,
    a Router/Provisioner object, or ``None`` for the scenario's own. ``trust_pickle``: see
    :func:`~prfaas_gym.policies.make_router` (never applies to the scenario's own router)."""
    from prfaas_gym.policies import make_provisioner, make_router

    sc = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
    seed = sc.seed if seed is None else seed
    router = policy if hasattr(policy, "route") else make_router(policy, sc, seed=seed, trust_pickle=trust_pickle)
    prov = provisioner if hasattr(provisioner, "provision") else make_provisioner(provisioner, sc)
    return Simulator(
        sc, router=router, provisioner=prov, seed=seed,
        data_dir=Path(data_dir) if data_dir is not None else None,
        requests=requests, n_requests=n_requests, rate_rps=rate_rps, duration_s=duration_s,
    )


def simulate_scenario(scenario: str | Path | Scenario, *, build_only: bool = False, **kwargs: Any) -> Simulator:
    """Build (and unless ``build_only``, run) a simulator; returns it (``.summary()``, ``.requests``)."""
    sim = build_simulator(scenario, **kwargs)
    if not build_only:
        sim.run()
    return sim


def write_records(requests: Sequence[Request], path: Path) -> None:
    """Write per-request records to ``.csv`` or ``.parquet`` (written whole, or not at all)."""
    from prfaas_gym.atomic import check_destination, write_file_atomic
    from prfaas_gym.metrics import request_arrays

    path = Path(path)
    check_destination(path, (".csv", ".parquet"), "records file")
    cols = request_arrays(requests)
    suffix = path.suffix.lower()

    def write(tmp: str) -> None:
        if suffix == ".csv":
            import csv

            names = list(cols)
            with open(tmp, "w", newline="") as fh:
                w = csv.writer(fh)
                w.writerow(names)
                for row in zip(*(cols[n].tolist() for n in names)):
                    w.writerow(row)
        else:
            try:
                import pyarrow as pa
                import pyarrow.parquet as pq
            except ImportError:
                raise ValueError(f"{path}: Parquet needs pyarrow (pip install 'prfaas-gym[parquet]')") from None
            pq.write_table(pa.table({k: v.tolist() for k, v in cols.items()}), tmp)

    write_file_atomic(path, write, suffix)
