"""Keras task models == their ONNX graphs in ONNX Runtime (native RNN/GRU/LSTM nodes)."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

import keras  # noqa: E402

import keras_seq  # noqa: E402
from keras_seq.export.onnx.task_graphs import task_model_to_onnx  # noqa: E402

RNG = np.random.default_rng(0)


def _session(model_proto):
    return ort.InferenceSession(model_proto.SerializeToString(), providers=["CPUExecutionProvider"])


def _ids(lengths, vocab, width=None):
    width = width or max(max(lengths), 1)
    ids = np.zeros((len(lengths), width), np.int64)
    for i, n in enumerate(lengths):
        ids[i, :n] = RNG.integers(1, vocab, n)
    return ids


def _randomize(model):
    # Random (not initial) weights: biases and all gates matter.
    model.set_weights([RNG.normal(0, 0.5, w.shape).astype("float32") for w in model.get_weights()])
    return model


def _op_types(proto):
    return {n.op_type for n in proto.graph.node}


LENGTHS = [7, 1, 0, 4, 7]


@pytest.mark.parametrize("cell", ["elman", "gru", "lstm"])
@pytest.mark.parametrize("pooling", ["last", "mean", "max", "final"])
def test_classifier_matches_keras(cell, pooling):
    model = _randomize(
        keras_seq.build_classifier(50, 3, cell=cell, embed_dim=8, units=6, depth=2, pooling=pooling, dropout=0.2)
    )
    proto = task_model_to_onnx(model, "classify")
    expected_op = {"elman": "RNN", "gru": "GRU", "lstm": "LSTM"}[cell]
    assert expected_op in _op_types(proto) and "Loop" not in _op_types(proto)
    ids = _ids(LENGTHS, 50)
    got = _session(proto).run(None, {"ids": ids})[0]
    want = np.asarray(model(ids.astype("int32"), training=False))
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_unidirectional_and_reset_before_gru():
    model = keras_seq.build_classifier(40, 2, cell="gru", embed_dim=8, units=5, bidirectional=False)
    layer = model.get_layer("gru_0")
    assert layer.cell.reset_after
    ids = _ids(LENGTHS, 40)
    model = _randomize(model)
    got = _session(task_model_to_onnx(model, "classify")).run(None, {"ids": ids})[0]
    np.testing.assert_allclose(got, np.asarray(model(ids.astype("int32"))), atol=1e-5)
    # reset_after=False: ONNX linear_before_reset=0
    import keras

    inputs = keras.Input((None,), dtype="int32")
    x = keras.layers.Embedding(40, 8, mask_zero=True)(inputs)
    x = keras_seq.GRU(5, reset_after=False, return_sequences=True)(x)
    x = keras_seq.SequencePooling("mean")(x)
    before = _randomize(keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x)))
    got = _session(task_model_to_onnx(before, "classify")).run(None, {"ids": ids})[0]
    np.testing.assert_allclose(got, np.asarray(before(ids.astype("int32"))), atol=1e-5)


@pytest.mark.parametrize("crf", [False, True])
@pytest.mark.parametrize("chars", [False, True, "contextual"])
def test_tagger_matches_keras(crf, chars):
    model = _randomize(
        keras_seq.build_tagger(
            60,
            5,
            cell="lstm",
            embed_dim=8,
            units=6,
            depth=2,
            crf=crf,
            char_vocab_size=20 if chars else None,
            char_embed_dim=4,
            char_units=3,
            char_lm_units=5 if chars == "contextual" else 0,
            char_lm_cell="gru",
        )
    )
    proto = task_model_to_onnx(model, "tag")
    ids = _ids(LENGTHS, 60)
    feeds = {"ids": ids}
    inputs = ids.astype("int32")
    if chars:
        char_ids = np.zeros(ids.shape + (4,), np.int64)
        for (i, t), v in np.ndenumerate(ids):
            if v:
                n = RNG.integers(1, 5)
                char_ids[i, t, :n] = RNG.integers(1, 20, n)
        feeds["chars"] = char_ids
        inputs = [inputs, char_ids.astype("int32")]
    got = _session(proto).run(None, feeds)[0]
    want = np.asarray(model(inputs, training=False))
    mask = ids != 0
    np.testing.assert_allclose(got[mask], want[mask], atol=1e-5)


@pytest.mark.parametrize("cell", ["elman", "gru", "lstm"])
def test_language_model_graph_carries_states(cell):
    model = _randomize(keras_seq.build_language_model(30, cell=cell, embed_dim=8, units=6, depth=2))
    proto = task_model_to_onnx(model, "lm")
    session = _session(proto)
    names = [i.name for i in session.get_inputs()]
    assert names[0] == "ids" and all(n.startswith("state_") for n in names[1:])
    ids = _ids([6, 6], 30)
    zeros = {n: np.zeros((2, 6), np.float32) for n in names[1:]}
    outputs = session.run(None, {"ids": ids, **zeros})
    np.testing.assert_allclose(outputs[0], np.asarray(model(ids.astype("int32"))), atol=1e-5)
    # Two halves with the states carried == the whole sequence at once.
    first = session.run(None, {"ids": ids[:, :3], **zeros})
    carried = dict(zip(names[1:], first[1:]))
    second = session.run(None, {"ids": ids[:, 3:], **carried})
    np.testing.assert_allclose(second[0], outputs[0][:, 3:], atol=1e-5)


@pytest.mark.parametrize(
    "cell,attention,input_feeding", [("lstm", "luong", True), ("lstm", "luong", False), ("gru", "bahdanau", False)]
)
def test_seq2seq_step_graph_matches_the_keras_step(cell, attention, input_feeding):
    from keras_seq.export.onnx.encoder_decoder import seq2seq_to_onnx

    model = _randomize(
        keras_seq.build_seq2seq(
            12, 9, cell=cell, units=6, embed_dim=4, attention=attention, input_feeding=input_feeding
        )
    )
    graphs = seq2seq_to_onnx(model, {})
    encoder, step = (_session(graphs[name]) for name in ("model.onnx", "decoder_step.onnx"))
    ids = _ids([5, 3, 1], 12)
    encoded = dict(zip([o.name for o in encoder.get_outputs()], encoder.run(None, {"ids": ids})))
    stepper = keras_seq.Seq2SeqStepper(model)
    memory, mask, carry = stepper.encode(ids)
    carry_names = [i.name for i in step.get_inputs() if i.name.startswith("state_") or i.name == "attentional"]
    assert ("attentional" in carry_names) is input_feeding and len(carry_names) == len(carry)
    onnx_carry = [encoded.get(name, np.zeros((3, 6), np.float32)) for name in carry_names]
    fixed = {
        "memory": encoded["memory"],
        "memory_mask": mask,
        **({"keys": encoded["keys"]} if "keys" in encoded else {}),
    }
    keras_step = stepper.step_fn(keras.ops.convert_to_numpy(memory), mask)
    for token in ([1, 4, 7], [3, 3, 2], [8, 1, 5]):
        tokens = np.array(token)
        want, carry = keras_step(tokens, carry)
        got = step.run(None, {"token": tokens.astype(np.int64), **dict(zip(carry_names, onnx_carry)), **fixed})
        np.testing.assert_allclose(got[0], want, atol=1e-5)
        onnx_carry = got[1 : 1 + len(carry_names)]
        for a, b in zip(onnx_carry, carry):
            np.testing.assert_allclose(a, b, atol=1e-5)
