"""The README cannot rot: every code block runs as written (shell blocks against a demo run, as after
`make demo`; Python blocks as scripts), except the two that install or rerun this very suite."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import REPO, fresh_copy, run_python

pytestmark = pytest.mark.slow

#: blocks not run here, by their first line: installing from the registry, and `make demo` / `make test`
#: (CI runs the second; the demo's run is laid out by the fixture instead)
NOT_RUN = ("pip install keras-seq[tf]", "make demo")


def _blocks() -> list[tuple[str, str]]:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    return re.findall(r"```(\w+)\n(.*?)```", readme, re.S)


def test_the_readme_is_short_and_its_blocks_are_known():
    assert len((REPO / "README.md").read_text(encoding="utf-8").splitlines()) <= 250
    blocks = _blocks()
    skipped = [code for _, code in blocks if code.startswith(NOT_RUN)]
    assert len(skipped) == len(NOT_RUN)  # a block added to the README runs, unless named above
    assert {language for language, _ in blocks} == {"sh", "python"}


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory, demo_export) -> Path:
    """A folder holding the run `make demo` leaves: demo-out/run (the recipes export it themselves),
    a copy of the demo run the other files' `demo_export` was made from."""
    root = tmp_path_factory.mktemp("readme")
    fresh_copy(demo_export.parent / "run", root / "demo-out" / "run")
    (root / "js").symlink_to(REPO / "js")  # the checkout's JavaScript package, as beside demo-out/
    return root


def test_every_shell_block_runs_as_written(demo_dir):
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    for _, code in (b for b in _blocks() if b[0] == "sh" and not b[1].startswith(NOT_RUN)):
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", code], cwd=demo_dir, env=env, capture_output=True, text=True, timeout=900
        )
        assert result.returncode == 0, f"{code}\n{result.stderr[-3000:]}"
    assert (demo_dir / "runs" / "reviews" / "metrics.json").exists()  # the own-file recipe trained
    assert (demo_dir / "kit" / "models.config").exists()
    _check_model_card(demo_dir / "exports" / "reviews", demo_dir / "demo-out" / "run")  # the deploy recipe exported


def _check_model_card(export: Path, run: Path) -> None:
    """MODEL_CARD.md beside an export: front matter for model hubs, and every score of the run's metrics.json."""
    import json

    from keras_seq.export.model_card import held_out_metrics

    card = (export / "MODEL_CARD.md").read_text(encoding="utf-8")
    metrics = json.loads((run / "metrics.json").read_text())
    split, scores = held_out_metrics(metrics)
    assert card.startswith("---\nlibrary_name: keras-seq\npipeline_tag: text-classification\n")
    assert split == "test" and scores["accuracy"] == metrics["test"]["accuracy"] and scores["examples"] > 0
    for key, value in scores.items():
        assert f"{{type: {json.dumps(key)}, value: {json.dumps(value)}}}" in card  # the front matter, exactly
        assert re.search(rf"\| {re.escape(key)} \| {value:.6g} \|", card)  # the table
    assert f"in {metrics['train_seconds']} s" in card and metrics["machine"] in card
    assert "## Limitations" in card and "truncated" in card


def test_every_python_block_runs_as_written(tmp_path):
    blocks = [code for language, code in _blocks() if language == "python"]
    assert blocks
    temporary = tmp_path / "tmp"  # the scripts' temporary folder: ours are gone when they end
    temporary.mkdir()
    for code in blocks:
        prefix = f"import os; os.chdir({str(tmp_path)!r})\n"
        result = run_python(prefix + code, timeout=600, env={"TMPDIR": str(temporary)})
        assert result.returncode == 0, result.stderr[-3000:]
    assert not list(temporary.glob("keras-seq-*")), list(temporary.glob("keras-seq-*"))  # (autograph leaves its own)
    # the layers recipe prints [[p(neg) p(pos)], ...] for a positive and a negative review
    printed = " ".join(result.stdout.strip().splitlines()[-2:])
    probabilities = np.array([float(v) for v in re.findall(r"\d+\.\d*", printed)]).reshape(-1, 2)
    assert probabilities.shape == (2, 2) and probabilities[0].argmax() == 1 and probabilities[1].argmax() == 0
    assert (tmp_path / "tokenizer" / "tokenizer.json").exists() and (tmp_path / "model.onnx").exists()
