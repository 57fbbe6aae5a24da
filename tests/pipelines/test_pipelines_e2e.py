"""The task pipelines end to end on small slices of the real data (slow: run in CI)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from keras_seq.pipelines.config import load_config
from keras_seq.pipelines.readers import open_corpus
from keras_seq.pipelines.train import train_run
from tests.helpers import cli_in_process

pytestmark = pytest.mark.slow
SMALL = [
    "model.units=16",
    "model.embed_dim=16",
    "model.depth=1",
    "model.char_units=8",
    "model.char_embed_dim=8",
    "train.epochs=2",
    "train.max_minutes=5",
]


def _here(*args: str) -> subprocess.CompletedProcess:
    """The command in this process (TensorFlow is loaded already: a fresh process costs seconds)."""
    code, out, err = cli_in_process(*args)
    return subprocess.CompletedProcess(list(args), code, out, err)


def _cli(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "keras_seq.cli", *args], capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def imdb_slice(tmp_path_factory, data_dir):
    folder = tmp_path_factory.mktemp("imdb")
    reviews = list(open_corpus(data_dir / "imdb" / "aclImdb_v1.tar.gz", "classify").examples("test"))
    picked = reviews[:200] + reviews[-200:]  # neg first, pos last
    for split, rows in {
        "train": picked[50:350],
        "dev": picked[:25] + picked[-25:],
        "test": picked[25:50] + picked[350:375],
    }.items():
        with open(folder / f"{split}.jsonl", "w", encoding="utf-8") as f:
            for text, label in rows:
                f.write(json.dumps({"text": text, "label": label}) + "\n")
    return folder


def test_classify_pipeline_run_dir_and_evaluate(tmp_path, imdb_slice):
    config = load_config(
        "pipelines/configs/imdb_sentiment.toml", [f'data.source="{imdb_slice}"', "data.max_len=120", *SMALL]
    )
    metrics = train_run(config, tmp_path / "run", verbose=0)
    run = tmp_path / "run"
    for name in (
        "model.keras",
        "tokenizer.json",
        "vocab.txt",
        "labels.txt",
        "config.toml",
        "metrics.json",
        "curves.png",
        "history.csv",
        "logs",
    ):
        assert (run / name).exists(), name
    assert not (run / "backup").exists()  # removed once the run finished
    assert 0.0 <= metrics["test"]["accuracy"] <= 1.0 and metrics["test"]["examples"] == 50
    assert metrics["parameters"] > 0 and metrics["train_seconds"] > 0
    result = _here("evaluate", str(run), str(imdb_slice), "--json")
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == metrics["test"]
    # The .keras model loads with keras alone once keras_seq is imported (in a fresh process:
    # tests/layers/test_layers.py; on the other backends: tests/layers/test_backends.py).
    import keras

    assert keras.saving.load_model(run / "model.keras").count_params() == metrics["parameters"]


# The NER pipeline (the CRF tagger, entity F1, the best-F1 epoch kept) trains and is checked in
# tests/export/test_export.py, which exports that run.


# With characters only: word-only taggers train in test_export.py and the demo's drills.
@pytest.mark.parametrize("chars", [True])
def test_pos_pipeline_on_conllu_slice(tmp_path, data_dir, chars):
    for split in ("train", "dev", "test"):
        text = (data_dir / "ud_english_ewt" / f"en_ewt-ud-{split}.conllu").read_text(encoding="utf-8")
        (tmp_path / f"slice-{split}.conllu").write_text(
            "\n\n".join(text.split("\n\n")[:300]) + "\n\n", encoding="utf-8"
        )
    config = load_config(
        "pipelines/configs/ewt_upos.toml",
        [
            f'data.source="{tmp_path}"',
            *SMALL,
            "train.epochs=4",
            "train.learning_rate=0.02",
            f"data.char_features={str(chars).lower()}",
            "train.word_dropout=0.1",
        ],
    )
    metrics = train_run(config, tmp_path / "run", verbose=0)
    assert metrics["test"]["sentences"] == 300
    assert metrics["test"]["token_accuracy"] > 0.3  # well above chance (17 tags) after 4 small epochs
    assert "entity_f1" not in metrics["test"]
    assert (tmp_path / "run" / "chars.txt").exists() == chars
    assert metrics["monitor"] == "val_accuracy" and 0.0 < metrics["best_val_accuracy"] <= 1.0
    # UPOS tags are not BIO: selecting on entity F1 is refused with the reason.
    bad = load_config("pipelines/configs/ewt_upos.toml", [f'data.source="{tmp_path}"', *SMALL, "train.monitor=val_f1"])
    with pytest.raises(ValueError, match="needs BIO tags"):
        train_run(bad, tmp_path / "bad", verbose=0)


# The character language model's pipeline (perplexity, generation greedy, sampled and by beam) trains
# and is checked in tests/export/test_export.py, which exports that run.


def test_demo_word_order_beats_bag_of_words(tmp_path):
    result = _here("demo", "--out", str(tmp_path / "demo"))  # `make demo`; its export still verifies in a fresh process
    assert result.returncode == 0, result.stderr[-2000:]
    metrics = json.loads((tmp_path / "demo" / "run" / "metrics.json").read_text())
    assert metrics["test"]["accuracy"] > 0.9
    assert "bag-of-words" in result.stdout and "the movie was good , not bad at all" in result.stdout


def test_train_cli_rejects_bad_configs(tmp_path):
    result = _cli("train", "imdb_sentiment", "--set", "model.colour=blue", "--out", str(tmp_path / "r"))
    assert result.returncode == 2 and "unknown config key 'model.colour'" in result.stderr
    result = _cli("train", "no_such_config", "--out", str(tmp_path / "r"))
    assert result.returncode == 2 and "no config" in result.stderr
    result = _cli("train", "imdb_sentiment", "--set", "train.monitor=val_f1", "--out", str(tmp_path / "r"))
    assert result.returncode == 2 and "train.monitor must be one of" in result.stderr
    result = _cli("train", "imdb_sentiment", "--set", "train.lr_decay=2", "--out", str(tmp_path / "r"))
    assert result.returncode == 2 and "train.lr_decay must be a number in (0, 1]" in result.stderr
    assert "Traceback" not in result.stderr
