"""The JavaScript runtime (js/): its own unit tests, its CLI's refusals, and its answers against the
Python twin's on exports of the tasks the other files do not export (a word-level softmax tagger
on EWT, a word-level language model) and on real IMDB reviews. The CRF tagger with characters
(CoNLL), the character language model and the classifier are checked where tests/export/test_export.py
exports them, the encoder-decoder where tests/pipelines/test_g2p.py does."""

from __future__ import annotations

import contextlib
import json
from itertools import islice
from pathlib import Path

import pytest

from tests.helpers import REPO, cli_in_process, fresh_copy, served
from tests.js.conformance import JS, assert_javascript_agrees, assert_same, run_node

pytestmark = pytest.mark.slow


def test_the_packages_unit_tests_pass():
    result = run_node("--test", "test/")
    assert result.returncode == 0, result.stdout.decode()[-4000:]


@pytest.fixture(scope="module")
def exports(tmp_path_factory, data_dir):
    """task -> (export dir, texts, token lists): models fitted briefly with the library API."""
    import keras

    import keras_seq
    from keras_seq.export import export
    from keras_seq.pipelines import TextTokenizer, text_dataset
    from keras_seq.pipelines.readers import open_corpus

    root = tmp_path_factory.mktemp("js-exports")
    keras.utils.set_random_seed(0)
    out = {}
    ewt = open_corpus(data_dir / "ud_english_ewt", "tag")
    train = list(islice(ewt.examples("train"), 400))
    test = list(islice(ewt.examples("test"), 60))
    tokens = [words for words, _ in train]
    tags = sorted({t for _, row in train for t in row})
    tokenizer = TextTokenizer.fit(tokens, vocab_size=2000, max_len=60)
    tagger = keras_seq.build_tagger(tokenizer.vocab_size, len(tags) + 1, units=16, embed_dim=16, depth=1)
    tagger.compile("adam", "sparse_categorical_crossentropy")
    names = ["<PAD>", *tags]  # text_dataset's tag ids count from 1; 0 pads
    dataset = text_dataset(tokens, [r for _, r in train], tokenizer=tokenizer, label_names=tags)
    tagger.fit(dataset, epochs=1, verbose=0)
    export(tagger, root / "tag", tokenizer=tokenizer, labels=names, task="tag", name="upos", verify=False)
    out["tag"] = (root / "tag", [" ".join(w) for w, _ in test], [w for w, _ in test])

    text = (data_dir / "tinyshakespeare" / "input.txt").read_text(encoding="utf-8")
    lines = [line for line in text[:40000].split("\n") if line.strip()]
    tokenizer = TextTokenizer.fit(lines, vocab_size=800)
    lm = keras_seq.build_language_model(tokenizer.vocab_size, units=16, embed_dim=16, depth=2)
    lm.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    ids = tokenizer(lines[:600])
    lm.fit(ids[:, :-1], ids[:, 1:], epochs=1, verbose=0, batch_size=32)
    export(lm, root / "lm", tokenizer=tokenizer, task="lm", name="words", verify=False, generate_length=12)
    out["lm"] = (root / "lm", lines[-40:], None)
    return out


@pytest.mark.parametrize("task", ["tag", "lm"])
def test_javascript_answers_as_python_does(exports, tmp_path, task):
    export_dir, texts, token_lists = exports[task]
    report = assert_javascript_agrees(
        export_dir, texts, tmp_path, token_lists=token_lists, generate=12 if task == "lm" else None
    )
    assert report["texts"] >= 58 and report["lines"] >= 58


def test_javascript_answers_real_imdb_reviews_as_python_does(demo_export, data_dir, tmp_path):
    from keras_seq.pipelines.readers import open_corpus

    reviews = [
        text
        for text, _ in islice(open_corpus(data_dir / "imdb" / "aclImdb_v1.tar.gz", "classify").examples("test"), 40)
    ]
    report = assert_javascript_agrees(demo_export, reviews, tmp_path)
    assert report["texts"] >= 58


def test_the_node_cli_refuses_bad_input_in_one_line(demo_export, tmp_path):
    texts = tmp_path / "in.jsonl"
    texts.write_text('"good"\n', encoding="utf-8")

    def predict(export_dir, *args):
        result = run_node("bin/predict.mjs", str(export_dir), *args)
        err = result.stderr.decode()
        assert "at " not in err and len(err.strip().splitlines()) <= 2, err  # no stack trace
        return result.returncode, err

    code, err = predict(tmp_path / "missing", "--input", str(texts))
    assert code == 2 and "no ONNX export there" in err
    code, err = predict(demo_export, "--input", str(tmp_path / "nothing.jsonl"))
    assert code == 2 and "nothing.jsonl: missing (the --input file)" in err
    code, err = predict(demo_export, "--input", str(texts), "--threads", "many")
    assert code == 2 and "--threads must be a positive integer" in err

    damaged = fresh_copy(demo_export, tmp_path / "damaged")
    graph = damaged / "onnx" / "model.onnx"
    graph.write_bytes(graph.read_bytes()[:-10] + b"0123456789")
    code, err = predict(damaged, "--input", str(texts))
    assert code == 2 and f"{graph}: does not match its checksum" in err

    newer = fresh_copy(demo_export, tmp_path / "newer")
    info_file = newer / "onnx" / "model.json"
    info = json.loads(info_file.read_text())
    info_file.write_text(json.dumps({**info, "format_version": 2}))
    code, err = predict(newer, "--input", str(texts))
    assert code == 2 and "model.json: format_version 2 is not supported" in err

    # a tokenizer of a newer rules version, its checksum updated as a newer exporter would write it
    import hashlib

    rules = fresh_copy(demo_export, tmp_path / "rules")
    spec_file = rules / "onnx" / "tokenizer.json"
    spec_file.write_text(json.dumps({**json.loads(spec_file.read_text()), "rules_version": 2}))
    info_file = rules / "onnx" / "model.json"
    info = json.loads(info_file.read_text())
    info["files"]["tokenizer.json"] = hashlib.sha256(spec_file.read_bytes()).hexdigest()
    info_file.write_text(json.dumps(info))
    code, err = predict(rules, "--input", str(texts))
    assert code == 2 and "tokenizer.json: tokenizer rules version 2 is not supported" in err
    assert (JS / "bin" / "predict.mjs").is_file()


ARTIFACTS = REPO / "test-artifacts"  # screenshots of the demo page, kept after the run (CI uploads the folder)


def _in_browser(url: str, texts: list[str], screenshot: Path) -> dict:
    result = run_node("scripts/browser.mjs", url, str(screenshot), stdin=json.dumps(texts).encode(), timeout=240)
    assert result.returncode == 0, result.stderr.decode()[-3000:]
    return json.loads(result.stdout)


@contextlib.contextmanager
def _static_site(folder: Path):
    from keras_seq.serving.demo_page import serve_static

    server = serve_static(folder)
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


@pytest.mark.parametrize("task", ["classify", "tag"])
def test_the_demo_page_answers_in_a_real_browser_as_python_does(task, demo_export, exports, tmp_path, data_dir):
    """classify: served by `keras-seq serve --demo-page`; tag: the static site `keras-seq kit --demo-page`
    writes, on a plain static file server. Headless Chromium types the texts; the page's answers are
    Python's (onnxruntime-web's WebAssembly kernels: numbers within 1e-5, labels and tags exact)."""
    from keras_seq.serving.predictor import OnnxPredictor

    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / f"demo-page-{task}.png"
    if task == "classify":
        export_dir = demo_export
        texts = ["a good film , not bad at all", "a bad film , not good at all", "", "great 👍🏽 movie 🎬!!"]
        with served(export_dir, "--demo-page", "--no-batching") as (port, _):  # (batching: tests/serving)
            page = _in_browser(f"http://127.0.0.1:{port}/", texts, screenshot)
    else:
        export_dir, sentences, _ = exports["tag"]
        texts = sentences[:6] + ["", "cafe\u0301 nai\u0308ve 1,000.5 (e.g. U.S.A.)!"]
        code, out, err = cli_in_process("kit", str(export_dir), "--out", str(tmp_path / "kit"), "--demo-page")
        assert code == 0, err
        site = tmp_path / "kit" / "demo" / export_dir.name
        with _static_site(site) as url:
            page = _in_browser(f"{url}/index.html", texts, screenshot)
            missing = _in_browser(f"{url}/index.html?model=nowhere/", [], tmp_path / "missing.png")
        assert (
            missing["loaded"]["state"] == "error"
            and "nowhere/model.json: missing (HTTP 404)" in missing["loaded"]["error"]
        )
    assert page["loaded"] == {"state": "ready", "task": task, "error": ""}, page["console"][-5:]
    expected = OnnxPredictor(export_dir).predict(texts)
    assert len(page["results"]) == len(texts)
    for text, shown, answer in zip(texts, page["results"], expected):
        assert shown["state"] == "answered" and shown["error"] is None, (text, shown)
        assert_same(answer, json.loads(shown["json"]), repr(text))
        if task == "classify":
            assert [label for label, _ in shown["bars"]] == list(answer["probabilities"])
        else:
            assert shown["tags"] == answer["tags"]
    assert screenshot.stat().st_size > 10_000
