"""The backend matrix: our layers, SequencePooling, CRF, the model builders, `model.fit` on
`text_dataset` and decoding on TensorFlow, JAX and (when importable) PyTorch, with `.keras`
files moved between every pair of backends. The work is `tests/scripts/backend_matrix.py`, run
once per backend in its own process (a process has one Keras backend)."""

from __future__ import annotations

import importlib.util
import json
import math

import pytest

from tests.helpers import REPO, run_python

MATRIX = REPO / "tests" / "scripts" / "backend_matrix.py"
BACKENDS = ["tensorflow", "jax"] + (["torch"] if importlib.util.find_spec("torch") else [])


def _run(backend: str, out, *others) -> dict:
    code = f"import runpy; runpy.run_path({str(MATRIX)!r}, run_name='__main__')"
    result = run_python(code, str(out), *map(str, others), env={"KERAS_BACKEND": backend}, timeout=600)
    assert result.returncode == 0, f"{backend}: {result.stderr[-3000:]}"
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_every_backend_matches_the_builtins_trains_and_reads_every_others_keras_files(tmp_path):
    """TensorFlow's share runs here (this process' backend), the others in their own processes;
    then this process loads what they saved: every pair of backends, both ways."""
    import keras

    from tests.scripts import backend_matrix

    assert keras.backend.backend() == "tensorflow"
    if "torch" not in BACKENDS:
        print("torch is not importable here: the matrix runs on TensorFlow and JAX")
    reports = {"tensorflow": backend_matrix.run(tmp_path / "tensorflow")}
    done = ["tensorflow"]
    for backend in BACKENDS[1:]:  # each loads the .keras files of the backends before it
        reports[backend] = _run(backend, tmp_path / backend, *(tmp_path / b for b in done))
        done.append(backend)
    loaded = backend_matrix.run(tmp_path / "tensorflow", *(tmp_path / b for b in BACKENDS[1:]))
    for backend in BACKENDS:
        report = reports[backend]
        assert report["backend"] == backend
        assert sum(k.startswith("parity/") for k in report) == 9 and "pooling/max" in report
        assert sum(k.startswith("backwards/") for k in report) == 2 + 2 + 3  # the outputs and each state
        assert all(math.isfinite(report[k]) for k in report if k.startswith("fit/"))
        assert "stateful/carries_state" in report and "attention_decoder/steps_vs_teacher_forcing" in report
    sources = {k.split("/")[1] for r in [*reports.values(), loaded] for k in r if k.startswith("load/")}
    assert sources == set(BACKENDS)
