"""int8 ONNX graphs (``export --int8``): ONNX Runtime's dynamic quantization beside the float graphs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.helpers import cli_in_process


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    import keras

    import keras_seq
    from keras_seq.export import export
    from keras_seq.pipelines import TextTokenizer, text_dataset

    root = tmp_path_factory.mktemp("int8")
    texts = ["a good film , not bad at all", "a bad film , not good at all", "good", "not good"] * 50
    labels = ["pos", "neg", "pos", "neg"] * 50
    tokenizer = TextTokenizer.fit(texts, vocab_size=100, max_len=16)
    keras.utils.set_random_seed(0)
    model = keras_seq.build_classifier(tokenizer.vocab_size, 2, cell="lstm", units=16, embed_dim=16)
    model.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy")
    model.fit(text_dataset(texts, labels, tokenizer=tokenizer, tokens_per_batch=512), epochs=3, verbose=0)
    summary = export(
        model, root / "export", tokenizer=tokenizer, labels=["neg", "pos"], name="tiny", int8=True, verify=False
    )
    return {"root": root, "summary": summary, "texts": texts[:4]}


def test_int8_graphs_quantize_what_ort_can_and_answer_alike(exported):
    from keras_seq.serving.predictor import OnnxPredictor

    info = json.loads((exported["root"] / "export" / "onnx" / "model.json").read_text())
    assert info["int8"]["graphs"] == {"model.onnx": "model.int8.onnx"}
    assert info["int8"]["quantized"]["LSTM"] >= 1 and info["int8"]["quantized"]["MatMul"] >= 1
    assert info["int8"]["quantized"]["Gather"] == 1  # the embedding table, read as int8
    assert (
        "model.int8.onnx" in info["files"]
        or "onnx/model.int8.onnx" in json.loads((exported["root"] / "export" / "export.json").read_text())["files"]
    )
    float_answers = OnnxPredictor(exported["root"] / "export").predict(exported["texts"])
    int8_answers = OnnxPredictor(exported["root"] / "export", int8=True).predict(exported["texts"])
    assert [a["label"] for a in int8_answers] == [a["label"] for a in float_answers]
    difference = max(
        abs(a["probabilities"][k] - b["probabilities"][k])
        for a, b in zip(float_answers, int8_answers)
        for k in a["probabilities"]
    )
    assert 0 < difference < 0.05  # quantized: close, not equal


def test_predict_int8_from_the_cli_and_refusals(exported, tmp_path):
    code, out, err = cli_in_process("predict", str(exported["root"] / "export"), "--int8", "good")
    assert code == 0, err
    assert json.loads(out)["label"] in ("neg", "pos")
    code, _, err = cli_in_process(
        "predict", str(exported["root"] / "export"), "--int8", "--runtime", "savedmodel", "good"
    )
    assert code == 2 and "use it with --runtime onnx" in err


def test_a_damaged_int8_graph_is_named(exported, tmp_path):
    import shutil

    from keras_seq.contracts import ContractError
    from keras_seq.serving.predictor import OnnxPredictor

    copy = shutil.copytree(exported["root"] / "export", tmp_path / "export")
    path = copy / "onnx" / "model.int8.onnx"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ContractError, match="model.int8.onnx"):
        OnnxPredictor(copy, int8=True)


def test_an_export_without_int8_graphs_says_how_to_get_them(demo_export):
    from keras_seq.serving.predictor import OnnxPredictor

    export_dir = demo_export
    with pytest.raises(ValueError, match="export again with --int8"):
        OnnxPredictor(export_dir, int8=True)
    assert np.isfinite(OnnxPredictor(export_dir).predict(["good"])[0]["probabilities"]["pos"])
