"""Execute notebooks/compare_policies.ipynb with small parameters (nbclient)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "compare_policies.ipynb"

SMALL = {
    "PRFAAS_NB_SCENARIO": "bursty_fluctuating",
    "PRFAAS_NB_POLICIES": "prfaas-adaptive,prfaas-threshold,local-only",
    "PRFAAS_NB_PROVISIONED": "prfaas-threshold,prfaas-threshold+paper-imbalance",
    "PRFAAS_NB_SEEDS": "2",
    "PRFAAS_NB_REQUESTS": "120",
    "PRFAAS_NB_RATES": "1,2",
    "MPLBACKEND": "Agg",
}


def test_notebook_committed_without_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None


def test_notebook_executes(monkeypatch):
    for k, v in SMALL.items():
        monkeypatch.setenv(k, v)
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(NOTEBOOK.parent)}})
    client.execute()
    text = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
    assert "Traceback" not in text
