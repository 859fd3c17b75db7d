"""The Ray backend of :func:`prfaas_gym.parallel.map_tasks` (needs the ``ray`` extra).

Each task is one Ray task with one CPU. :func:`init_ray` starts a local Ray (``address=None``,
``workers`` CPUs) or joins an existing cluster (``ray start --head`` on the head node, then
``address="auto"`` there or ``"ray://HEAD:10001"`` from elsewhere) with a ``runtime_env`` that
carries everything a worker needs:

* ``py_modules``: this copy of the ``prfaas_gym`` package (with its packaged profiles and
  shipped policies), so workers run the driver's code, not whatever version a node has;
* ``working_dir`` (cluster only): the data directory (``--data-dir`` / ``$PRFAAS_DATA_DIR``),
  uploaded once and unpacked on each node; tasks resolve trace paths against it. A local
  Ray reads the driver's directory in place (``env_vars``);
* ``env_vars``: one BLAS/torch thread per task (a task is one CPU).

When Ray is already initialised (inside a Tune trial, or a user's own ``ray.init``), the
running session and its ``runtime_env`` are used as they are.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

import prfaas_gym
from prfaas_gym.parallel import SINGLE_THREAD_ENV, Backend

PACKAGE_DIR = Path(prfaas_gym.__file__).resolve().parent
DATA_DIR_ENV = "PRFAAS_DATA_DIR"
SHIPPED_DATA = "__working_dir__"  # marker: the data directory is the task's working directory


def import_ray() -> Any:
    """``ray``, or a one-line ``ValueError`` saying which extra installs it."""
    try:
        import ray
    except ImportError:
        raise ValueError("--backend ray: needs the 'ray' extra (pip install 'prfaas-gym[ray]')") from None
    return ray


def runtime_env(data_dir: Path | None, ship_data: bool) -> dict[str, Any]:
    """The ``runtime_env`` of :func:`init_ray` (module docstring)."""
    env: dict[str, Any] = {
        "py_modules": [str(PACKAGE_DIR)],
        "env_vars": dict(SINGLE_THREAD_ENV),
        "excludes": ["__pycache__", "*.pyc"],
    }
    if data_dir is not None:
        if ship_data:
            env["working_dir"] = str(data_dir)
        else:
            env["env_vars"][DATA_DIR_ENV] = str(data_dir)
    return env


_SESSION: dict[str, Any] = {}


def init_ray(backend: Backend) -> Any:
    """Start or join Ray for ``backend`` once per process; returns ``ray``."""
    import logging

    ray = import_ray()
    data_dir = backend.data_dir
    if data_dir is None and os.environ.get(DATA_DIR_ENV):
        data_dir = Path(os.environ[DATA_DIR_ENV])
    data_dir = data_dir.resolve() if data_dir is not None else None
    if ray.is_initialized():
        if not _SESSION:  # someone else's session (a Tune trial, the user's own ray.init)
            _SESSION.update(address=None, ship=False, data_dir=data_dir, foreign=True)
        return ray
    ship = backend.address is not None
    try:
        ray.init(
            address=backend.address,
            num_cpus=backend.workers if backend.address is None else None,
            runtime_env=runtime_env(data_dir, ship),
            include_dashboard=False,
            logging_level=logging.WARNING,
            log_to_driver=True,
        )
    except ConnectionError as exc:
        raise ValueError(f"--address {backend.address}: {str(exc).strip().splitlines()[0]}") from None
    _SESSION.update(address=backend.address, ship=ship, data_dir=data_dir, foreign=False)
    return ray


def _call(fn: Callable[[Any, Any], Any], task: Any, data_dir: Any) -> Any:
    """Runs on a Ray worker: resolve where the data is, then run the task."""
    if data_dir == SHIPPED_DATA:
        data_dir = Path.cwd()
    return fn(task, data_dir)


_REMOTE: dict[str, Any] = {}


def run_on_ray(fn: Callable[[Any, Any], Any], indexed: list[tuple[int, Any]], backend: Backend,
               finished: Callable[[int, Any], None]) -> None:
    """Submit every ``(index, task)``; call ``finished(index, result)`` as each completes."""
    ray = init_ray(backend)
    if "call" not in _REMOTE:
        _REMOTE["call"] = ray.remote(num_cpus=1)(_call)
    data_dir: Any = SHIPPED_DATA if _SESSION["ship"] and _SESSION["data_dir"] else _SESSION["data_dir"]
    fn_ref = ray.put(fn)
    refs = {_REMOTE["call"].remote(fn_ref, task, data_dir): i for i, task in indexed}
    try:
        while refs:
            ready, _ = ray.wait(list(refs), num_returns=1)
            for ref in ready:
                finished(refs.pop(ref), ray.get(ref))
    except BaseException:
        for ref in refs:
            ray.cancel(ref)
        raise

