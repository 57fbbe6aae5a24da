"""Export end to end on small runs trained on slices of the real data (slow: run in CI):
SavedModel (fresh-process loaders, warmup, saved_model_cli) and ONNX Runtime
give the Keras model's answers; `keras-seq export` / `predict` behave."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("tensorflow_serving")

from keras_seq.export.checks.parity import parity  # noqa: E402
from keras_seq.export.checks.probes import adversarial_texts  # noqa: E402
from keras_seq.export.exporter import export_run  # noqa: E402
from keras_seq.pipelines.config import load_config  # noqa: E402
from keras_seq.pipelines.readers import open_corpus  # noqa: E402
from keras_seq.pipelines.train import train_run  # noqa: E402
from tests.helpers import cli_in_process  # noqa: E402
from tests.js.conformance import assert_javascript_agrees  # noqa: E402

pytestmark = pytest.mark.slow
SMALL = ["model.units=16", "model.embed_dim=16", "model.depth=1", "train.epochs=1", "train.max_minutes=5"]


def _cli(*args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "keras_seq.cli", *args], capture_output=True, text=True, timeout=timeout
    )


def _cli_here(*args: str) -> subprocess.CompletedProcess:
    """The command in this process (TensorFlow is loaded already: each fresh process costs seconds)."""
    code, out, err = cli_in_process(*args)
    return subprocess.CompletedProcess(list(args), code, out, err)


def _conll_slice(folder, data_dir, n=300):
    corpus = open_corpus(data_dir / "conll2003", "tag")
    for split, name in (("train", "train"), ("validation", "dev"), ("test", "test")):
        sentences = [s for _, s in zip(range(n), corpus.examples(split))]
        (folder / f"{name}.txt").write_text(
            "\n\n".join("\n".join(f"{w} {t}" for w, t in zip(ws, ts)) for ws, ts in sentences) + "\n", encoding="utf-8"
        )
    return [" ".join(ws) for ws, _ in sentences[:40]]


@pytest.fixture(scope="module")
def runs(tmp_path_factory, data_dir):
    """name -> (run dir, real texts for parity)."""
    root = tmp_path_factory.mktemp("runs")
    out = {}
    ner = root / "ner"
    ner.mkdir()
    texts = _conll_slice(ner, data_dir)
    # The CRF tagger with characters, per word and in context (the softmax tagger's graph is the same minus the CRF:
    # tests/export/test_to_onnx.py and the drills export softmax taggers).
    config = load_config(
        "pipelines/configs/conll2003_ner_crf.toml",
        [
            f'data.source="{ner}"',
            "model.crf=true",
            "model.char_units=8",
            "data.char_features=true",
            # and contextual character features (trained here: no pretrained character LMs)
            "model.char_lm_units=8",
            "model.char_lm_embed_dim=4",
            "model.char_lm_trainable=true",
            *SMALL,
            "train.epochs=2",  # two: the run keeps the epoch of the best validation entity F1
        ],
    )
    train_run(config, root / "crf", verbose=0)
    out["crf"] = (root / "crf", texts)
    text = (data_dir / "tinyshakespeare" / "input.txt").read_text(encoding="utf-8")[:30000]
    (root / "small.txt").write_text(text, encoding="utf-8")
    config = load_config(
        "pipelines/configs/shakespeare_char.toml",
        [
            f'data.source="{root / "small.txt"}"',
            "model.units=16",
            "model.depth=2",
            "train.epochs=1",
            "train.lm_batch=8",
            "train.lm_window=50",
        ],
    )
    train_run(config, root / "lm", verbose=0)
    out["lm"] = (root / "lm", [text[i : i + 90] for i in range(0, 3600, 90)])
    return out


def test_the_ner_run_reports_entity_f1_and_keeps_its_best_epoch(runs):
    """The shipped CoNLL config's run (the CRF tagger exported below): entity F1 by the CoNLL rules on
    each split, and the epoch with the best validation entity F1 is the one kept."""
    run_dir, _ = runs["crf"]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    test = metrics["test"]
    assert test["sentences"] == 300 and 0.0 <= test["entity_f1"] <= 1.0
    assert 0.0 <= test["token_accuracy"] <= 1.0
    assert metrics["monitor"] == "val_f1" and metrics["epochs_run"] == 2
    header, *rows = (run_dir / "history.csv").read_text().splitlines()
    column = header.split(",").index("val_f1")
    assert metrics["best_val_f1"] == pytest.approx(max(float(r.split(",")[column]) for r in rows))
    assert metrics["validation"]["entity_f1"] == pytest.approx(metrics["best_val_f1"], abs=0.01)


def test_the_char_lm_run_reports_perplexity_and_generates(runs):
    """The shipped Shakespeare config's run (the language model exported below): validation loss
    below uniform guessing, perplexity = e^loss; `generate` greedy, sampled (the same sample with the
    same seed in another process) and by beam search."""
    run_dir, _ = runs["lm"]
    validation = json.loads((run_dir / "metrics.json").read_text())["validation"]
    vocab_size = len((run_dir / "vocab.txt").read_text(encoding="utf-8").splitlines())
    assert 0 < validation["loss_nats"] < np.log(vocab_size)
    assert validation["perplexity"] == pytest.approx(np.e ** validation["loss_nats"], rel=1e-6)
    greedy = _cli_here("generate", str(run_dir), "--prompt", "ROMEO:", "--length", "30")
    assert greedy.returncode == 0, greedy.stderr[-2000:]
    assert greedy.stdout.startswith("ROMEO:") and len(greedy.stdout.removesuffix("\n")) == 36  # print's newline
    seeded = ("generate", str(run_dir), "--prompt", "ROMEO:", "--length", "30", "--temperature", "0.8", "--seed", "3")
    assert _cli(*seeded).stdout == _cli_here(*seeded).stdout  # the same sample in another process
    beam = _cli_here("generate", str(run_dir), "--prompt", "ROMEO:", "--length", "10", "--beam", "3")
    assert beam.returncode == 0, beam.stderr[-2000:]


# A classifier's verified export is the demo's (tests/pipelines/test_pipelines_e2e.py) and the README's
# deploy recipe (tests/house/test_readme.py); its runtimes agree in tests/js and tests/drills/test_serving_drills.py.
@pytest.mark.parametrize("task", ["crf", "lm"])
def test_export_verifies_and_all_runtimes_agree(runs, tmp_path, task):
    run_dir, texts = runs[task]
    summary = export_run(
        run_dir, tmp_path / "export", name="m", generate_length=20, max_len=120 if task == "lm" else None
    )
    version = tmp_path / "export" / "savedmodel" / "m" / "1"
    assert (version / "saved_model.pb").exists() and (version / "assets" / "vocab.txt").exists()
    assert (version / "assets.extra" / "tf_serving_warmup_requests").exists()
    report = summary["verification"]
    assert report["checked"][:2] == ["tf.saved_model.load", "TF1 session loader"]
    assert report["warmup_requests"] >= 4 and "saved_model_cli show/run" in report["checked"]
    assert "TF C API (TF_LoadSessionFromSavedModel)" in report["checked"]
    assert report["max_abs_diff"] <= 1e-5 and report["onnx"]["max_abs_diff"] <= 1e-5
    native = {"RNN", "GRU", "LSTM"} & set(summary["onnx_operators"])
    assert native and "Loop" not in summary["onnx_operators"] and summary["opset"] == 18
    assert not [p for p in (tmp_path / "export").rglob("*") if "staging" in p.name]
    result = parity(run_dir, tmp_path / "export", list(texts) + adversarial_texts(summary["max_len"]))
    # probabilities within 1e-5; CRF emissions are unnormalised scores (|x| up to ~20), so float32
    # rounding alone reaches ~1e-5 there -- the decoded tags must still be identical.
    tolerance = 1e-4 if task == "crf" else 1e-5
    for pair in ("savedmodel_vs_keras", "onnx_vs_keras", "onnx_vs_savedmodel"):
        assert result[pair]["mismatched"] == 0, (pair, result[pair])
        assert result[pair]["max_abs_diff"] <= tolerance, (pair, result[pair])
    if task == "lm":  # the same export generates the same text in both runtimes (one export, not two)
        _lm_export_generates_the_same_text_in_both_runtimes(tmp_path / "export", length=20)
    # ... and the JavaScript runtime answers as the Python one (CoNLL token lists too; LM continuations)
    token_lists = [text.split(" ") for text in texts] if task == "crf" else None
    assert_javascript_agrees(
        tmp_path / "export", list(texts), tmp_path, token_lists=token_lists, generate=20 if task == "lm" else None
    )


def test_cli_export_versions_and_predict_jsonl(runs, tmp_path):
    run_dir, texts = runs["crf"]
    out = tmp_path / "export"
    first = _cli_here("export", str(run_dir), "--out", str(out), "--name", "ner", "--no-verify")
    assert first.returncode == 0, first.stderr[-3000:]
    assert json.loads(first.stdout)["savedmodel"].endswith("ner/1")
    second = _cli_here("export", str(run_dir), "--out", str(out), "--name", "ner", "--no-verify")
    assert second.returncode == 0 and json.loads(second.stdout)["savedmodel"].endswith("ner/2")
    again = _cli_here("export", str(run_dir), "--out", str(out), "--name", "ner", "--version", "1", "--no-verify")
    assert again.returncode == 2 and "already exists" in again.stderr and "Traceback" not in again.stderr
    lines = [
        json.dumps("EU rejects German call to boycott British lamb ."),
        json.dumps(""),
        "42",
        "{not json",
        json.dumps("line\nbreak \u202eRTL \U0001f600 \ud800"),
    ]
    data = ("\n".join(lines) + "\n").encode("utf-8", "surrogatepass") + b"\xff\xfe invalid bytes\n"
    (tmp_path / "in.jsonl").write_bytes(data)
    answers = {}
    for runtime in ("savedmodel", "onnx"):
        result = _cli_here("predict", str(out), "--runtime", runtime, "--input", str(tmp_path / "in.jsonl"))
        # lines 3, 4 and 6 are not JSON strings: each gets its error, the others their answers, exit 3
        assert result.returncode == 3, result.stderr[-3000:]
        assert "3 of 6 inputs got an error (line 3, 4, 6)" in result.stderr
        answers[runtime] = [json.loads(line) for line in result.stdout.splitlines()]
    assert answers["savedmodel"] == answers["onnx"]
    got = answers["onnx"]
    assert len(got) == 6
    assert got[0]["tokens"][:2] == ["EU", "rejects"] and len(got[0]["tags"]) == len(got[0]["tokens"])
    assert got[1] == {"tokens": [], "tags": []}
    assert "expected a JSON string" in got[2]["error"] and "not valid JSON" in got[3]["error"]
    assert "\ufffd" in got[4]["tokens"][-1] and "not valid UTF-8" in got[5]["error"]
    _tagger_answers_token_lists_as_given(out, [text.split(" ") for text in texts])


def _tagger_answers_token_lists_as_given(export_dir, sentences):
    """CoNLL's own tokens in: one tag per given token, never split again; the ids are those
    the training pipeline gives the same tokens (TF twin)."""
    from keras_seq.contracts.export_dir import find_onnx_dir
    from keras_seq.pipelines.text_api import TextTokenizer
    from keras_seq.serving.predictor import OnnxPredictor

    predictor = OnnxPredictor(export_dir)
    by_tokens = predictor.predict(sentences)
    by_text = predictor.predict([" ".join(s) for s in sentences])
    resplit = [i for i, (a, s) in enumerate(zip(by_text, sentences)) if a["tokens"] != s]
    assert 0 < len(resplit) < len(sentences)  # e.g. "1996-12-06" splits at its hyphens as raw text
    for i, (answer, tokens) in enumerate(zip(by_tokens, sentences)):
        assert answer["tokens"] == tokens and len(answer["tags"]) == len(tokens)
        if i not in resplit:
            assert answer == by_text[i]
    scores = predictor.tag_scores(sentences[:3])
    assert [len(s) for s in scores] == [len(t) for t in sentences[:3]]
    tf_ids = TextTokenizer.load(find_onnx_dir(export_dir)).encode(sentences).to_list()
    assert tf_ids == [predictor.tokenizer.encode_tokens(s) for s in sentences]


def _lm_export_generates_the_same_text_in_both_runtimes(export_dir, length):
    outputs = {}
    for runtime in ("savedmodel", "onnx"):
        result = _cli_here("predict", str(export_dir), "--runtime", runtime, "--generate", "ROMEO:", "")
        assert result.returncode == 0, result.stderr[-3000:]
        outputs[runtime] = [json.loads(line) for line in result.stdout.splitlines()]
    assert outputs["savedmodel"] == outputs["onnx"]
    assert len(outputs["onnx"][0]["continuation"]) == length and outputs["onnx"][1] == {"continuation": ""}


def test_export_refuses_bad_runs(tmp_path):
    result = _cli("export", str(tmp_path / "missing"), "--out", str(tmp_path / "e"))
    assert result.returncode == 2 and "no run directory" in result.stderr
    np.testing.assert_equal(list((tmp_path).iterdir()), [])
