"""Run independent tasks in parallel: in this process, in worker processes, or on Ray.

Every fan-out in the package (``compare``, ``sweep``, ``bound``, ``capacity``, the benchmark)
goes through :func:`map_tasks`: a picklable module-level function applied to a list of tasks,
results returned **in task order**, so a parallel run prints exactly what the serial run
prints (each task is a deterministic simulation of its own seed; nothing is shared between
tasks). Three backends:

* ``local`` with ``workers=1`` (the default): a plain loop in this process;
* ``local`` with ``workers=N``: N worker processes on this machine (``concurrent.futures``
  with the ``spawn`` start method, one torch/BLAS thread per worker);
* ``ray``: Ray tasks (one CPU each) on a local Ray (``address=None``, ``workers`` CPUs) or on
  an existing cluster (``address="ray://head:10001"`` or ``"auto"``). The package and the
  data directory travel to the workers through Ray's ``runtime_env`` (``py_modules`` and
  ``working_dir``), so the cluster's nodes need only Python and the dependencies.

``resume_dir`` makes a run resumable: each finished task's result is appended to
``resume_dir/journal.jsonl`` under a key that hashes the function and the whole task; a re-run
with the same directory skips the tasks already there (after a crash or Ctrl-C, or to extend
``--seeds``). Results must therefore be JSON values (numbers, strings, None, lists, dicts).

Task functions are called as ``fn(task, data_dir)``: ``data_dir`` is where trace paths
resolve on the worker (``None``: the worker's ``$PRFAAS_DATA_DIR``).
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

BACKENDS = ("local", "ray")
JOURNAL = "journal.jsonl"
# one thread per worker: N workers on N cores, not N x (all cores) threads fighting
SINGLE_THREAD_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Backend:
    """Where tasks run.

    Attributes:
        kind: ``"local"`` or ``"ray"``.
        workers: local worker processes (``local``), or CPUs of a local Ray (``ray`` without
            ``address``; ``None`` there means every CPU of the machine).
        address: Ray cluster address (``None``: start a local Ray).
        resume_dir: journal directory of a resumable run (``None``: not resumable).
        data_dir: the driver's data directory (shipped to Ray workers through ``runtime_env``).
    """

    kind: str = "local"
    workers: int | None = 1
    address: str | None = None
    resume_dir: Path | None = None
    data_dir: Path | None = None

    def __post_init__(self) -> None:
        if self.kind not in BACKENDS:
            raise ValueError(f"--backend: unknown backend {self.kind!r} (known: {', '.join(BACKENDS)})")
        if self.workers is not None and self.workers < 1:
            raise ValueError(f"--workers: must be >= 1, got {self.workers}")
        if self.address is not None and self.kind != "ray":
            raise ValueError("--address: only with --backend ray")

    @property
    def parallel(self) -> bool:
        """True when tasks may run concurrently (more than one local worker, or Ray)."""
        return self.kind == "ray" or (self.workers or 1) > 1


SERIAL = Backend()


def add_backend_arguments(p: Any) -> None:
    """``--workers N --backend {local,ray} --address ADDR --resume DIR`` on a subparser."""
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="parallel worker processes on this machine (default 1: serial); with "
                        "--backend ray and no --address, the CPUs of the local Ray")
    p.add_argument("--backend", choices=BACKENDS, default="local",
                   help="local: this machine (default); ray: Ray tasks (needs the 'ray' extra)")
    p.add_argument("--address", default=None, metavar="ADDR",
                   help="Ray cluster to join (e.g. auto, ray://head:10001; default: start a local Ray)")
    p.add_argument("--resume", default=None, metavar="DIR",
                   help="journal finished runs in DIR; re-running with the same DIR skips them")


def backend_from_args(args: Any, data_dir: Path | None = None) -> Backend:
    """The :class:`Backend` of parsed :func:`add_backend_arguments` flags."""
    workers = args.workers
    if workers is None:
        workers = None if args.backend == "ray" else 1
    resume = Path(args.resume).resolve() if args.resume else None
    return Backend(args.backend, workers, args.address, resume, data_dir)


def map_tasks(
    fn: Callable[[Any, Path | None], Any],
    tasks: Sequence[Any],
    backend: Backend = SERIAL,
    *,
    progress: Progress | None = None,
) -> list[Any]:
    """``[fn(task, data_dir) for task in tasks]``, run on ``backend``, in task order.

    Args:
        fn: a module-level (picklable) function of ``(task, data_dir)``.
        tasks: picklable task descriptions.
        progress: ``progress(done, total)`` after each finished task (journaled ones count
            as done at the start).
    """
    tasks = list(tasks)
    results: list[Any] = [None] * len(tasks)
    journal = _Journal(backend.resume_dir, fn) if backend.resume_dir is not None else None
    todo = list(range(len(tasks)))
    if journal is not None:
        todo = []
        for i, task in enumerate(tasks):
            found, value = journal.get(task)
            if found:
                results[i] = value
            else:
                todo.append(i)
    done = len(tasks) - len(todo)
    if progress is not None and done:
        progress(done, len(tasks))

    def finished(i: int, value: Any) -> None:
        nonlocal done
        # journaled: keep the JSON round-trip so a fresh and a resumed run return equal values
        results[i] = journal.put(tasks[i], value) if journal is not None else value
        done += 1
        if progress is not None:
            progress(done, len(tasks))

    if not todo:
        return results
    if backend.kind == "ray":
        from prfaas_gym.ray_backend import run_on_ray

        run_on_ray(fn, [(i, tasks[i]) for i in todo], backend, finished)
    elif (backend.workers or 1) > 1 and len(todo) > 1:
        _run_processes(fn, [(i, tasks[i]) for i in todo], backend, finished)
    else:
        for i in todo:
            finished(i, fn(tasks[i], backend.data_dir))
    return results


def _init_worker() -> None:
    # read by torch and BLAS when they first load in this worker (trained policies, the LP)
    os.environ.update(SINGLE_THREAD_ENV)


_POOLS: dict[int, Any] = {}


def _pool(workers: int) -> Any:
    """A process pool of ``workers`` kept for the life of this process (later calls, e.g. the
    rounds of a capacity bisection, find warm workers)."""
    import atexit
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    if workers not in _POOLS:
        # spawn: no fork of a driver that may hold threads (tqdm, torch); measured faster to
        # start here than forkserver with a preload
        ctx = multiprocessing.get_context("spawn")
        _POOLS[workers] = ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker)
        if len(_POOLS) == 1:
            atexit.register(shutdown_pools)
    return _POOLS[workers]


def shutdown_pools() -> None:
    """Stop the worker processes of :func:`map_tasks` (also done at exit)."""
    while _POOLS:
        _POOLS.popitem()[1].shutdown(wait=True, cancel_futures=True)


def _run_processes(fn: Callable, indexed: list[tuple[int, Any]], backend: Backend,
                   finished: Callable[[int, Any], None]) -> None:
    from concurrent.futures import FIRST_COMPLETED, wait

    pool = _pool(backend.workers or 1)
    pending = {pool.submit(fn, task, backend.data_dir): i for i, task in indexed}
    try:
        while pending:
            ready, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in sorted(ready, key=pending.__getitem__):
                finished(pending.pop(fut), fut.result())
    except BaseException:  # a failed task or Ctrl-C: drop the pool, its queue is stale
        _POOLS.pop(backend.workers or 1, None)
        pool.shutdown(wait=False, cancel_futures=True)
        raise


def task_key(fn: Callable, task: Any) -> str:
    """A stable hash of the function's name and the pickled task (the journal key)."""
    h = hashlib.sha256(f"{fn.__module__}.{fn.__qualname__}\n".encode())
    h.update(pickle.dumps(task, protocol=4))
    return h.hexdigest()


class _Journal:
    """Append-only ``journal.jsonl`` of ``{"key", "result"}`` lines (a torn last line is ignored)."""

    def __init__(self, directory: Path, fn: Callable) -> None:
        self.path = Path(directory) / JOURNAL
        self.fn = fn
        self.entries: dict[str, Any] = {}
        if self.path.is_file():
            with open(self.path) as fh:
                for line in fh:
                    try:
                        rec = json.loads(line)
                        self.entries[rec["key"]] = rec["result"]
                    except (ValueError, KeyError, TypeError):
                        continue  # a line cut by a crash: that task runs again
        elif self.path.exists():
            raise ValueError(f"--resume {directory}: {self.path} is not a file")

    def get(self, task: Any) -> tuple[bool, Any]:
        key = task_key(self.fn, task)
        return (key in self.entries, self.entries.get(key))

    def put(self, task: Any, result: Any) -> Any:
        """Append ``result``; returns it as read back from JSON."""
        text = json.dumps(result, default=_plain)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a") as fh:
            fh.write(f'{{"key": "{task_key(self.fn, task)}", "result": {text}}}\n')
            fh.flush()
            os.fsync(fh.fileno())
        return json.loads(text)


def _plain(value: Any) -> Any:
    """numpy scalars -> Python numbers (for the journal)."""
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"journal: cannot store a {type(value).__name__} result")
