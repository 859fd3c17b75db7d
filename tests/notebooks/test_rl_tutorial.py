"""Execute notebooks/rl_tutorial.ipynb with tiny settings (nbclient): train, save, leaderboard."""

from __future__ import annotations

from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("sb3_contrib")

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "rl_tutorial.ipynb"


def test_notebook_committed_without_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None


def test_notebook_executes(monkeypatch, tmp_path):
    tiny = {"PRFAAS_NB_TASK": "prfaas/paper-steady-v1", "PRFAAS_NB_TIMESTEPS": "128",
            "PRFAAS_NB_EPISODE_REQUESTS": "40", "PRFAAS_NB_TEST_SEEDS": "1",
            "PRFAAS_NB_EVAL_REQUESTS": "40", "PRFAAS_NB_OUT": str(tmp_path / "tutorial")}
    for k, v in tiny.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("PYTHONPATH", str(NOTEBOOK.parents[1]))  # the kernel imports this checkout
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(NOTEBOOK.parent)}})
    client.execute()
    text = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
    assert "Traceback" not in text
    assert "vs best heuristic" in text and "fraction of bound" in text
    assert (tmp_path / "tutorial" / "policy" / "model.zip").is_file()
