"""Bad input is refused with a message naming the file and line, or the spec field."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from prfaas_gym.workload import WorkloadError, build_workload

OK_LINE = '{"timestamp": 0, "input_length": 600, "output_length": 5, "hash_ids": [0, 1]}\n'
SYN = {"kind": "synthetic", "requests": 10, "arrival": {"process": "poisson", "rate_rps": 1.0},
       "input_tokens": {"dist": "constant", "value": 10}, "output_tokens": {"dist": "constant", "value": 10}}


def _build(spec: dict, data_dir: Path | None = None, **kw):
    return build_workload(spec, rng=np.random.default_rng(0), data_dir=data_dir, **kw)


def _mooncake(tmp_path: Path, bad_line: str) -> str:
    (tmp_path / "t.jsonl").write_text(OK_LINE + OK_LINE + bad_line + "\n")
    with pytest.raises(WorkloadError) as exc:
        _build({"kind": "mooncake", "path": "t.jsonl"}, tmp_path)
    msg = str(exc.value)
    assert msg.startswith(f"{tmp_path / 't.jsonl'}:3: "), msg
    assert "\n" not in msg
    return msg


@pytest.mark.parametrize("line, expected", [
    ('{"timestamp": 0, "input_length": 600,', "malformed JSON"),
    ('[1, 2]', "expected a JSON object"),
    ('{"timestamp": 0, "output_length": 5, "hash_ids": [0, 1]}', "missing field 'input_length'"),
    ('{"input_length": 600, "output_length": 5, "hash_ids": [0, 1]}', "missing field 'timestamp'"),
    ('{"timestamp": 0, "input_length": 600, "output_length": 5}', "missing field 'hash_ids'"),
    ('{"timestamp": 0, "input_length": -600, "output_length": 5, "hash_ids": []}', "'input_length' must be >= 1"),
    ('{"timestamp": 0, "input_length": 600, "output_length": 0, "hash_ids": [0, 1]}', "'output_length' must be >= 1"),
    ('{"timestamp": -5, "input_length": 600, "output_length": 5, "hash_ids": [0, 1]}', "'timestamp' must be >= 0"),
    ('{"timestamp": "x", "input_length": 600, "output_length": 5, "hash_ids": [0, 1]}', "'timestamp' must be a number"),
    ('{"timestamp": 0, "input_length": 60.5, "output_length": 5, "hash_ids": [0]}', "'input_length' must be an integer"),
    ('{"timestamp": 0, "input_length": 600, "output_length": 5, "hash_ids": [0, 1, 2]}',
     "3 hash_ids for input_length 600; expected ceil(600/512) = 2"),
    ('{"timestamp": 0, "input_length": 600, "output_length": 5, "hash_ids": [0, "a"]}', "'hash_ids' must be a list"),
])
def test_mooncake_bad_lines(tmp_path: Path, line: str, expected: str) -> None:
    assert expected in _mooncake(tmp_path, line)


@pytest.mark.parametrize("row, expected", [
    ("2023-11-16 18:15:50.9951690,-3,10", "'ContextTokens' must be >= 1"),
    ("2023-11-16 18:15:50.9951690,abc,10", "'ContextTokens' must be an integer"),
    ("2023-11-16 18:15:50.9951690,3", "expected 3 fields, got 2"),
    ("yesterday,3,10", "TIMESTAMP 'yesterday' is not"),
])
def test_azure_bad_rows(tmp_path: Path, row: str, expected: str) -> None:
    f = tmp_path / "a.csv"
    f.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46.6805900,374,44\n" + row + "\n")
    with pytest.raises(WorkloadError) as exc:
        _build({"kind": "azure", "path": "a.csv"}, tmp_path)
    assert str(exc.value).startswith(f"{f}:3: ") and expected in str(exc.value)


def test_azure_missing_column(tmp_path: Path) -> None:
    f = tmp_path / "a.csv"
    f.write_text("TIMESTAMP,Context,GeneratedTokens\n2023-11-16 18:15:46.6805900,374,44\n")
    with pytest.raises(WorkloadError, match=re.escape(f"{f}:1: missing column 'ContextTokens'")):
        _build({"kind": "azure", "path": "a.csv"}, tmp_path)


def test_csv_unknown_columns(tmp_path: Path) -> None:
    f = tmp_path / "c.csv"
    f.write_text("when,a,b\n1,2,3\n")
    with pytest.raises(WorkloadError, match=re.escape(f"{f}:1: no arrival column")):
        _build({"kind": "csv", "path": "c.csv"}, tmp_path)
    with pytest.raises(WorkloadError, match=re.escape(f"{f}:2: 'when' must be a finite number >= 0")):
        f.write_text("when,a,b\n-1,2,3\n")
        _build({"kind": "csv", "path": "c.csv", "columns": {"arrival": "when", "input": "a", "output": "b"}},
               tmp_path)


def test_missing_data_dir(monkeypatch) -> None:
    monkeypatch.delenv("PRFAAS_DATA_DIR", raising=False)
    with pytest.raises(WorkloadError, match="workload.path: 'mooncake/x.jsonl' is relative to the data directory"
                                            ".*--data-dir.*PRFAAS_DATA_DIR"):
        _build({"kind": "mooncake", "path": "mooncake/x.jsonl"})


def test_data_dir_from_environment(monkeypatch, fixtures: Path) -> None:
    monkeypatch.setenv("PRFAAS_DATA_DIR", str(fixtures))
    assert len(_build({"kind": "mooncake", "path": "mooncake_tiny.jsonl"})) == 6


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(WorkloadError, match=re.escape(f"workload.path: no such file: {tmp_path / 'nope.jsonl'}")):
        _build({"kind": "mooncake", "path": "nope.jsonl"}, tmp_path)


def _spec_error(spec: dict, **kw) -> str:
    with pytest.raises(WorkloadError) as exc:
        build_workload(spec, rng=np.random.default_rng(0), data_dir=None, source="envs/x.yaml", **kw)
    return str(exc.value)


def _with(**changes) -> dict:
    spec = {k: (dict(v) if isinstance(v, dict) else v) for k, v in SYN.items()}
    for dotted, value in changes.items():
        *parents, key = dotted.split("__")
        d = spec
        for p in parents:
            d = d[p]
        d[key] = value
    return spec


@pytest.mark.parametrize("spec, expected", [
    (_with(kind="mooncak"), "envs/x.yaml: workload.kind: unknown 'mooncak' (known: synthetic, mooncake, azure, csv, "
                            "servegen)"),
    (_with(arrival__process="x"), "envs/x.yaml: workload.arrival.process: unknown 'x' (known: poisson, gamma, bursty, "
                                  "diurnal, uniform)"),
    (_with(input_tokens__dist="normal"), "envs/x.yaml: workload.input_tokens.dist: unknown 'normal' (known: "),
    (_with(arrival__rat_rps=3), "envs/x.yaml: workload.arrival: unknown key 'rat_rps' (known: "),
    (_with(reqests=3), "envs/x.yaml: workload: unknown key 'reqests' (known: "),
    (_with(output_tokens__valu=3), "workload.output_tokens: unknown key 'valu'"),
    (_with(requests=-5), "workload.requests: must be >= 1, got -5"),
    (_with(requests="many"), "workload.requests: expected an integer, got 'many'"),
    (_with(arrival__rate_rps=0), "workload.arrival.rate_rps: must be > 0, got 0"),
    (_with(arrival__process="gamma"), "workload.arrival.cv: required"),
    (_with(arrival__process="bursty", arrival__burst_fraction=0.5, arrival__burst_multiplier=3),
     "workload.arrival.burst_multiplier: burst_fraction * burst_multiplier must be <= 1"),
    (_with(input_tokens={"dist": "lognormal", "mu": 5}), "workload.input_tokens.sigma: required"),
    (_with(input_tokens={"dist": "constant", "value": 10, "min": 100, "max": 50}),
     "workload.input_tokens.max: must be >= min (100), got 50"),
    (_with(input_tokens={"dist": "lognormal", "mu": 2, "sigma": 0.1, "min": 100000}),
     "workload.input_tokens: [min, max] = [100000, None] excludes almost all"),
    (_with(input_tokens={"dist": "empirical", "values": [1, 2], "weights": [1]}),
     "workload.input_tokens.weights: need 2 weights"),
    (_with(input_tokens=None), "workload.input_tokens: required"),
    (_with(arrival=None), "workload.arrival: required"),
    (_with(prefix={"sesions": 3}), "workload.prefix: unknown key 'sesions'"),
    (_with(prefix={"turns_mean": 0.5}), "workload.prefix.turns_mean: must be >= 1, got 0.5"),
    (_with(arrival="poisson"), "workload.arrival: expected a mapping, got 'poisson'"),
    ({"kind": "synthetic", "arrival": {"rate_rps": 1}, "input_tokens": {"dist": "constant", "value": 1},
      "output_tokens": {"dist": "constant", "value": 1}}, "workload.requests: required for synthetic workloads"),
    ({"kind": "mooncake"}, "workload.path: required"),
    ({"kind": "mooncake", "path": "/x", "jitter_s": -1}, "workload.jitter_s: expected a number >= 0 or 'auto'"),
])
def test_spec_errors(spec: dict, expected: str) -> None:
    assert expected in _spec_error(spec)


def test_not_a_mapping() -> None:
    assert "envs/x.yaml: workload: expected a mapping" in _spec_error(["kind", "synthetic"])  # type: ignore[arg-type]


@pytest.mark.parametrize("kw, expected", [
    ({"n_requests": 0}, "n_requests: expected an integer >= 1, got 0"),
    ({"rate_rps": -1.0}, "rate_rps: expected a number > 0, got -1.0"),
    ({"duration_s": 0}, "duration_s: expected a number > 0, got 0"),
])
def test_bad_overrides(kw: dict, expected: str) -> None:
    assert expected in _spec_error(SYN, **kw)


def test_trace_typo_key(fixtures: Path) -> None:
    with pytest.raises(WorkloadError, match="workload: unknown key 'jiter_s'"):
        _build({"kind": "mooncake", "path": "mooncake_tiny.jsonl", "jiter_s": 3}, fixtures)


def test_servegen_bad_window(tmp_path: Path) -> None:
    (tmp_path / "c-trace.csv").write_text("0,1.0,1.0,Gamma,1.0,1.0\n600,1.0,1.0,Poisson,1,1\n")
    (tmp_path / "c-dataset.json").write_text('{"0": {"input_tokens": "{1: 1.0}", "output_tokens": "{1: 1.0}"}}')
    with pytest.raises(WorkloadError, match=re.escape(f"{tmp_path / 'c-trace.csv'}:2: unknown pattern 'Poisson'")):
        _build({"kind": "servegen", "path": "c"}, tmp_path, n_requests=5)
