"""Tests for the ``perf predict`` / ``perf calibrate`` CLI functions."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from prfaas_gym.perf.cli import main
from prfaas_gym.profiles import load_hardware_file

HEADER = "model,phase,batch,tokens,context,ms_median,note\n"
ROWS = ("llama3-8b,prefill,1,1024,1024,26.7,a\nllama3-8b,decode,8,8,2048,7.65,b\n"
        "llama3-3b,decode,1,1,512,3.0,c\nllama3-8b,prefill,2,512,512,27.0,d\n")


def _write(tmp_path: Path, text: str) -> str:
    p = tmp_path / "cases.csv"
    p.write_text(text)
    return str(p)


def test_predict_appends_ms(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, HEADER + ROWS)
    assert main(["perf", "predict", "--hardware", "h100-sxm", "--cases", path]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(rows) == 4
    assert rows[0]["note"] == "a" and float(rows[0]["ms"]) > 0
    assert list(rows[0])[-1] == "ms"


def test_predict_model_override_and_gpus(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, "phase,batch,tokens,context,gpus\nprefill,1,4096,4096,4\nprefill,1,4096,4096,8\n")
    assert main(["perf", "predict", "--hardware", "h100-sxm", "--cases", path, "--model", "llama3-70b"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert float(rows[1]["ms"]) < float(rows[0]["ms"])


@pytest.mark.parametrize("text,fragment", [
    ("model,phase,batch,tokens\nllama3-8b,prefill,1,1\n", ":1: missing column(s) context"),
    (HEADER + "llama3-8b,prefill,one,1,1,1,x\n", ":2: column 'batch': not a number"),
    (HEADER + "llama3-8b,prefill,1,1,1,1,x\nllama3-8b,warmup,1,1,1,1,x\n", ":3: column 'phase'"),
    (HEADER + "gpt-9,prefill,1,1,1,1,x\n", ":2: unknown model 'gpt-9' (known: "),
])
def test_bad_input_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, fragment: str) -> None:
    path = _write(tmp_path, text)
    assert main(["perf", "predict", "--hardware", "h100-sxm", "--cases", path]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    assert err.startswith(path) and fragment in err


def test_unknown_hardware(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, HEADER + ROWS)
    assert main(["perf", "predict", "--hardware", "tpu", "--cases", path]) == 2
    assert "unknown hardware 'tpu' (known: " in capsys.readouterr().err


def test_calibrate_writes_profile(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, HEADER + ROWS)
    out = tmp_path / "hw.yaml"
    assert main(["perf", "calibrate", "--hardware", "h100-sxm", "--measurements", path, "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "prefill" in text and "decode" in text and "MAPE" in text
    hw = load_hardware_file(out)
    assert hw.name == "h100-sxm"


def test_calibrate_needs_measurements(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, "model,phase,batch,tokens,context\nllama3-8b,prefill,1,1,1\n")
    assert main(["perf", "calibrate", "--hardware", "h100-sxm", "--measurements", path]) == 2
    assert "ms_median" in capsys.readouterr().err
