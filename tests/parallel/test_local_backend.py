"""The local parallel backend: ``--workers N`` prints what the serial run prints, resumes from
its journal, and keeps task order (``prfaas_gym.parallel``)."""

from __future__ import annotations

import json
import time

import pytest

from prfaas_gym.cli import main
from prfaas_gym.parallel import JOURNAL, Backend, map_tasks, task_key

COMPARE = ["compare", "bursty_fluctuating", "--policies", "prfaas-threshold,local-only,least-loaded",
           "--seeds", "3", "--requests", "120", "--json"]


def _out(capsys, argv: list[str]) -> str:
    assert main(argv) == 0
    return capsys.readouterr().out


def _slow_square(x: int, data_dir=None) -> int:
    time.sleep(0.05 * (4 - x))  # later tasks finish first: results must still come back in order
    return x * x


def test_map_tasks_keeps_order_and_reports_progress():
    seen = []
    out = map_tasks(_slow_square, [0, 1, 2, 3], Backend(workers=2), progress=lambda d, n: seen.append((d, n)))
    assert out == [0, 1, 4, 9]
    assert seen[-1] == (4, 4) and [d for d, _ in seen] == [1, 2, 3, 4]


def test_compare_workers_byte_identical(capsys):
    serial = _out(capsys, COMPARE)
    assert _out(capsys, COMPARE + ["--workers", "2"]) == serial
    assert "wall_time_s" not in serial


def test_sweep_workers_byte_identical(capsys):
    argv = ["sweep", "paper/prfaas_pd", "--policies", "prfaas-threshold,local-only", "--rates", "1.5,3",
            "--seeds", "2", "--requests", "100", "--json"]
    assert _out(capsys, argv + ["--workers", "2"]) == _out(capsys, argv)


def test_bound_workers_identical_but_solve_time(capsys):
    argv = ["bound", "paper/prfaas_pd", "--policies", "prfaas-threshold", "--seeds", "2",
            "--requests", "100", "--json"]

    def doc(extra):
        d = json.loads(_out(capsys, argv + extra))
        for row in d["rows"]:
            assert row.pop("solve_s") >= 0  # wall time of the LP solves
        return d

    assert doc(["--workers", "2"]) == doc([])


def test_capacity_workers_same_trace(capsys):
    argv = ["capacity", "paper/prfaas_pd", "--requests", "300", "--json"]

    def doc(extra):
        d = json.loads(_out(capsys, argv + extra))
        d.pop("wall_time_s")
        d["summary"].pop("wall_time_s", None)
        for run in d["bisection"]["trace"]:
            run.pop("wall_s")
        return d

    serial = doc([])
    assert serial["bisection"]["runs"] >= 4
    assert doc(["--workers", "2"]) == serial
    assert doc(["--workers", "3"]) == serial  # speculates two levels of the bisection tree


def test_resume_skips_journaled_runs(capsys, tmp_path, monkeypatch):
    serial = _out(capsys, COMPARE)
    assert _out(capsys, COMPARE + ["--resume", str(tmp_path)]) == serial
    journal = tmp_path / JOURNAL
    assert len(journal.read_text().splitlines()) == 9
    with open(journal, "a") as fh:
        fh.write('{"key": "torn')  # a line cut by a crash is ignored

    import prfaas_gym.evaluation.compare as compare

    def boom(*a, **k):
        raise AssertionError("a journaled run ran again")

    monkeypatch.setattr(compare, "run_policy", boom)
    assert _out(capsys, COMPARE + ["--resume", str(tmp_path)]) == serial
    monkeypatch.undo()
    # one more seed: only its three runs are new
    more = [a if a != "3" else "4" for a in COMPARE]
    _out(capsys, more + ["--resume", str(tmp_path), "--workers", "2"])
    assert len([ln for ln in journal.read_text().splitlines() if ln.endswith("}")]) == 12


def test_task_key_depends_on_every_field():
    from prfaas_gym.evaluation.compare import RunTask

    a = RunTask("s", "p", 0, 100)
    assert task_key(_slow_square, a) == task_key(_slow_square, RunTask("s", "p", 0, 100))
    assert task_key(_slow_square, a) != task_key(_slow_square, RunTask("s", "p", 0, 101))
    assert task_key(_slow_square, a) != task_key(map_tasks, a)


@pytest.mark.parametrize("argv, msg", [
    (["--workers", "0"], "--workers: must be >= 1"),
    (["--address", "auto"], "--address: only with --backend ray"),
])
def test_bad_backend_arguments(capsys, argv, msg):
    assert main(COMPARE + argv) == 2
    err = capsys.readouterr().err
    assert msg in err and len(err.strip().splitlines()) == 1


def test_keep_sims_needs_serial():
    from prfaas_gym.evaluation import compare_policies

    with pytest.raises(ValueError, match="keep_sims"):
        compare_policies("paper/prfaas_pd", ["prfaas-threshold"], seeds=1, n_requests=50,
                         keep_sims=True, backend=Backend(workers=2))
