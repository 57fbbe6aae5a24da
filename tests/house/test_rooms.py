"""The rooms import one way, counting imports inside functions; each room keeps its own part of a
task; a fifth task is new modules plus one registration line per room."""

from __future__ import annotations

import ast
import csv
from pathlib import Path

import pytest

from tests.helpers import REPO

#: folder -> the module prefix it installs as (setup.cfg's package_dir)
FOLDERS = {
    "keras_seq": "keras_seq",
    "pipelines": "keras_seq.pipelines",
    "export": "keras_seq.export",
    "serving": "keras_seq.serving",
    "deploy": "keras_seq.deploy",
}
#: room -> the rooms it may import (DESIGN.md: core <- pipelines <- export; core <- serving; export runs the
#: serving runtime for its checks; deploy and the CLI sit on top)
ALLOWED = {
    "core": {"core"},
    "pipelines": {"core", "pipelines"},
    "serving": {"core", "serving"},
    "export": {"core", "pipelines", "serving", "export"},
    "deploy": {"core", "pipelines", "serving", "export", "deploy"},
    "cli": {"core", "pipelines", "serving", "export", "deploy", "cli"},
}


def room_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "keras_seq":
        return None
    return parts[1] if len(parts) > 1 and parts[1] in ALLOWED and parts[1] != "core" else "core"


def module_of(path: Path) -> str:
    relative = path.relative_to(REPO).with_suffix("")
    parts = FOLDERS[relative.parts[0]].split(".") + list(relative.parts[1:])
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import in the file, those inside functions and classes included."""
    module = module_of(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            target = ".".join(base + ([node.module] if node.module else []))
            found.append((node.lineno, target))
            # `from keras_seq import cli` names a room as an attribute
            found += [(node.lineno, f"{target}.{alias.name}") for alias in node.names if target == "keras_seq"]
    return found


def wrong_way_edges() -> list[str]:
    edges = []
    for folder in FOLDERS:
        for path in sorted((REPO / folder).rglob("*.py")):
            source = room_of(module_of(path))
            for line, target in imports_of(path):
                room = room_of(target)
                if room is not None and room not in ALLOWED[source]:
                    edges.append(f"{path.relative_to(REPO)}:{line} {source} -> {room} ({target})")
    return edges


def test_rooms_import_one_way_inside_functions_too():
    assert wrong_way_edges() == []


def test_the_import_check_sees_an_import_inside_a_function(tmp_path, monkeypatch):
    """The check above can fail: a core module that imports the pipelines inside a function is caught."""
    probe = REPO / "keras_seq" / "_probe_wrong_way.py"
    probe.write_text("def f():\n    from keras_seq.pipelines import train\n    from keras_seq import cli\n")
    try:
        assert wrong_way_edges() == [
            "keras_seq/_probe_wrong_way.py:2 core -> pipelines (keras_seq.pipelines)",
            "keras_seq/_probe_wrong_way.py:3 core -> cli (keras_seq.cli)",
        ]
    finally:
        probe.unlink()


def test_core_task_keeps_identity_and_model_only():
    from keras_seq.tasks import Task

    members = sorted(name for name in vars(Task) if not name.startswith("__"))
    assert members == [
        "build_model",
        "character_features",
        "deployable",
        "generates",
        "label_file",
        "level",
        "loss",
        "loss_unit",
        "metrics",
        "name",
        "not_deployable",
        "stream",
    ]


def test_every_room_has_a_part_for_every_task():
    from keras_seq.export.tasks import EXPORT_PARTS
    from keras_seq.pipelines.tasks import PIPELINE_PARTS
    from keras_seq.serving.tasks import ANSWER_PARTS
    from keras_seq.tasks import TASKS

    for parts in (PIPELINE_PARTS, EXPORT_PARTS, ANSWER_PARTS):
        assert sorted(parts.names()) == sorted(TASKS), parts.room
    from keras_seq.pipelines.tasks import pipeline_for

    with pytest.raises(ValueError, match="unknown task 'translate'; known: classify, tag, lm, seq2seq"):
        pipeline_for("translate")


# -- a fifth task: new modules plus one registration line per room ------------------------------------------


@pytest.fixture
def fifth_task():
    """A toy task, 'first_word': a label is a text's first word, read from `LABEL<TAB>text` lines. Its
    parts reuse the classifier's; each registers with its room's decorator (the one line per room)."""
    from keras_seq.export.tasks import EXPORT_PARTS
    from keras_seq.export.tasks.classify import ClassifyExport
    from keras_seq.pipelines.tasks import PIPELINE_PARTS
    from keras_seq.pipelines.tasks.classify import ClassifyPipeline
    from keras_seq.serving.tasks import ANSWER_PARTS
    from keras_seq.serving.tasks.classify import ClassifyAnswers
    from keras_seq.tasks import TASKS, register_task
    from keras_seq.tasks.classify import ClassifyTask

    @register_task
    class FirstWordTask(ClassifyTask):
        name = "first_word"

    @PIPELINE_PARTS.register
    class FirstWordPipeline(ClassifyPipeline):
        name = "first_word"

        def read_file(self, corpus, path, split):
            with open(path, encoding="utf-8") as lines:
                for label, text in csv.reader(lines, delimiter="\t"):
                    yield text, label

    @EXPORT_PARTS.register
    class FirstWordExport(ClassifyExport):
        name = "first_word"

    @ANSWER_PARTS.register
    class FirstWordAnswers(ClassifyAnswers):
        name = "first_word"

    yield "first_word"
    for registry in (TASKS, PIPELINE_PARTS._parts, EXPORT_PARTS._parts, ANSWER_PARTS._parts):
        registry.pop("first_word")


@pytest.mark.slow
def test_a_fifth_task_trains_exports_and_answers(tmp_path, fifth_task):
    import numpy as np

    from keras_seq.export.exporter import export_run
    from keras_seq.pipelines.config import load_config
    from keras_seq.pipelines.train import train_run
    from keras_seq.serving.predictor import OnnxPredictor

    rng = np.random.default_rng(0)
    words = ["red", "green", "blue"]
    rows = []
    for _ in range(600):
        first = words[rng.integers(3)]
        rows.append(f"{first}\t{first} " + " ".join(words[i] for i in rng.integers(3, size=rng.integers(2, 7))))
    (tmp_path / "colours.tsv").write_text("\n".join(rows) + "\n")
    config = load_config(
        REPO / "pipelines" / "configs" / "demo.toml",
        [f'task="{fifth_task}"', f'data.source="{tmp_path / "colours.tsv"}"', "train.epochs=4"],
    )
    metrics = train_run(config, tmp_path / "run", verbose=0)
    assert metrics["task"] == fifth_task and metrics["test"]["accuracy"] > 0.9
    export_run(tmp_path / "run", tmp_path / "export", name="colours", verify=False)
    answers = OnnxPredictor(tmp_path / "export").predict(["green red red", "blue green"])
    assert [a["label"] for a in answers] == ["green", "blue"]


@pytest.mark.parametrize(
    "old, new, names",
    [
        ("keras_seq.serving.text", "keras_seq.serving.tokenizer_twin", ["TextTokenizer"]),
        ("keras_seq.serving.answers", "keras_seq.serving.signature_outputs", ["from_signature_outputs", "rows_of"]),
        ("keras_seq.serving.answers", "keras_seq.serving.scoring", ["viterbi", "lm_scores", "greedy_tokens"]),
        ("keras_seq.export.onnx_model", "keras_seq.export.onnx.converter", ["model_to_onnx"]),
    ],
)
def test_module_paths_earlier_readmes_documented_still_import(old, new, names):
    """A module that moved re-exports what it had, and says where it went."""
    import importlib
    import sys
    import warnings

    sys.modules.pop(old, None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        moved = importlib.import_module(old)
    assert any(new in str(w.message) for w in caught)
    for name in names:
        assert getattr(moved, name) is getattr(importlib.import_module(new), name)
