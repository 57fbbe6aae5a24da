"""The library API (`keras_seq.pipelines.TextTokenizer` / `text_dataset`); the README's example of it
runs in tests/house/test_readme.py."""

from __future__ import annotations

import numpy as np
import pytest


def test_tokenizer_fit_save_load_and_the_twin_agree(tmp_path):
    from keras_seq.pipelines import TextTokenizer
    from keras_seq.serving.tokenizer_twin import TextTokenizer as Twin

    texts = ["The cat sat .", "the dog sat !", "a cat , a dog"]
    tok = TextTokenizer.fit(texts, vocab_size=6, max_len=3)
    assert tok.vocab_size == 6 and tok.vocab.tokens[:2] == ["<PAD>", "<UNK>"]
    tok.save(tmp_path / "t")
    again = TextTokenizer.load(tmp_path / "t")
    assert again(texts).tolist() == tok(texts).tolist()
    assert Twin(tmp_path / "t").encode_batch(texts)[0].tolist() == tok(texts).tolist()
    with pytest.raises(TypeError, match="not one string"):
        TextTokenizer.fit("one string")


def test_text_dataset_for_classes_and_tags():
    from keras_seq.pipelines import TextTokenizer, text_dataset

    texts = [f"word{i % 7} " * (1 + i % 9) for i in range(100)]
    tok = TextTokenizer.fit(texts)
    batches = list(
        text_dataset(
            texts, ["b" if i % 2 else "a" for i in range(100)], tokenizer=tok, tokens_per_batch=64, max_batch=16
        )
    )
    assert sum(len(y) for _, y in batches) == 100 and {int(v) for _, y in batches for v in y} == {0, 1}
    assert all(x.shape[0] <= 16 for x, _ in batches)
    tokens = [t.split() for t in texts]
    tags = [["X" if w.endswith("3") else "O" for w in row] for row in tokens]
    tagged = list(text_dataset(tokens, tags, tokenizer=TextTokenizer.fit(tokens), shuffle_seed=None))
    for x, y in tagged:
        assert x.shape == y.shape and np.array_equal(x.numpy() == 0, y.numpy() == 0)  # padding is tag 0


@pytest.mark.slow
def test_export_of_a_keras_builtins_model_answers_in_both_runtimes_and_the_cli(tmp_path):
    """`keras_seq.export.export`: the layout `keras-seq export` writes, from a model of Keras
    built-ins trained with `text_dataset`; ONNX, SavedModel and `keras-seq predict` agree."""
    import json

    import keras

    from keras_seq.export import export
    from keras_seq.pipelines import TextTokenizer, text_dataset
    from keras_seq.serving.predictor import OnnxPredictor
    from keras_seq.serving.savedmodel_predictor import SavedModelPredictor
    from tests.helpers import run_cli

    texts = ["a good film , not bad at all", "a bad film , not good at all", "good", "not good"] * 50
    tok = TextTokenizer.fit(texts, max_len=64)
    ids = keras.Input((None,), dtype="int32")
    x = keras.layers.Embedding(tok.vocab_size, 8, mask_zero=True)(ids)
    model = keras.Model(
        ids, keras.layers.Dense(2, activation="softmax")(keras.layers.Bidirectional(keras.layers.GRU(8))(x))
    )
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(text_dataset(texts, ["pos", "neg", "pos", "neg"] * 50, tokenizer=tok), epochs=1, verbose=0)
    summary = export(model, tmp_path / "export", tokenizer=tok, labels=["neg", "pos"], name="mine", verify=False)
    assert summary["name"] == "mine" and summary["run"] is None and "GRU" in summary["onnx_operators"]
    probe = ["a good film , not bad at all", "not good", ""]
    onnx_answers = OnnxPredictor(tmp_path / "export").predict(probe)
    tf_answers = SavedModelPredictor(tmp_path / "export").predict(probe)
    for a, b in zip(onnx_answers, tf_answers):
        assert a["label"] == b["label"]
        assert max(abs(a["probabilities"][k] - b["probabilities"][k]) for k in a["probabilities"]) < 1e-5
    cli = run_cli("predict", str(tmp_path / "export"), *probe)
    assert cli.returncode == 0 and [json.loads(line)["label"] for line in cli.stdout.splitlines()] == [
        a["label"] for a in onnx_answers
    ]
    with pytest.raises(ValueError, match="needs its label names"):
        export(model, tmp_path / "other", tokenizer=tok, name="mine")


@pytest.mark.slow
def test_to_savedmodel_exports_any_models_own_outputs_verified(tmp_path):
    """`keras_seq.export.to_savedmodel` without a task: two outputs named after their layers,
    a raw-text serving_default and predict_ids (both replayed in a fresh process), numbered
    versions; without a tokenizer the ids signature is serving_default."""
    import keras
    import tensorflow as tf

    from keras_seq.export import to_savedmodel
    from keras_seq.pipelines import TextTokenizer

    texts = ["a good film", "a bad film", "good good", "bad plot and bad acting"]
    tok = TextTokenizer.fit(texts)
    ids = keras.Input((None,), dtype="int32", name="ids")
    x = keras.layers.Embedding(tok.vocab_size, 8, mask_zero=True)(ids)
    x = keras.layers.Bidirectional(keras.layers.LSTM(8, return_sequences=True))(x)
    per_token = keras.layers.Dense(3, name="per_token")(x)
    probs = keras.layers.Dense(2, activation="softmax", name="probs")(keras.layers.GlobalMaxPooling1D()(x))
    model = keras.Model(ids, [per_token, probs])

    summary = to_savedmodel(model, tmp_path / "models" / "mine", tokenizer=tok)
    assert summary["version"] == 1 and summary["outputs"] == ["per_token", "probs"]
    assert summary["signatures"] == {"serving_default": ["text"], "predict_ids": ["ids"]}
    assert "TF C API (TF_LoadSessionFromSavedModel)" in summary["verification"]["checked"]
    assert summary["verification"]["warmup_requests"] == 6  # 3 texts alone + together, 2 ids batches
    loaded = tf.saved_model.load(summary["savedmodel"])
    answer = loaded.signatures["serving_default"](text=tf.constant(texts[3:] + texts[:1]))
    want_tokens, want_probs = model(tok(texts[3:] + texts[:1]))
    assert answer["lengths"].numpy().tolist() == [5, 3]
    assert np.allclose(answer["probs"].numpy(), want_probs, atol=1e-5)
    assert np.allclose(answer["per_token"].numpy()[1, :3], want_tokens[1, :3], atol=1e-5)

    plain = to_savedmodel(model, tmp_path / "models" / "mine", verify=False)
    assert plain["version"] == 2 and plain["signatures"] == {"serving_default": ["ids"]}
    reloaded = tf.saved_model.load(plain["savedmodel"]).signatures["serving_default"]
    assert np.allclose(
        reloaded(ids=tf.constant(tok(texts[:2]), tf.int32))["probs"].numpy(), model(tok(texts[:2]))[1], atol=1e-5
    )
    assert sorted(p.name for p in (tmp_path / "models" / "mine").iterdir()) == ["1", "2"]  # no staging left

    with pytest.raises(ValueError, match="needs tokenizer="):
        to_savedmodel(model, tmp_path / "x", task="classify")
    with pytest.raises(ValueError, match="pass task= too"):
        to_savedmodel(model, tmp_path / "x", labels=["a", "b"])
    with pytest.raises(FileExistsError, match="already exists"):
        to_savedmodel(model, tmp_path / "models" / "mine", version=1)
    a, b = keras.Input((None,), name="a"), keras.Input((None,), name="b")
    with pytest.raises(ValueError, match="feeds one \\(batch, time\\) ids input"):
        to_savedmodel(keras.Model([a, b], keras.layers.Add()([a, b])), tmp_path / "x", tokenizer=tok)
