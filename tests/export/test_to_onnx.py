"""`keras_seq.export.to_onnx` on models written with Keras' built-in layers: native
RNN / GRU / LSTM nodes, no Loop, and ONNX Runtime equal to Keras (its own parity check)."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

import keras  # noqa: E402

from keras_seq.export import to_onnx  # noqa: E402

L = keras.layers


def _model(kind: str) -> keras.Model:
    ids = keras.Input((None,), dtype="int32", name="ids")
    x = L.Embedding(50, 6, mask_zero=kind != "unmasked")(ids)
    if kind in ("bilstm_gru", "unmasked"):
        x = L.Bidirectional(L.LSTM(5, return_sequences=True))(x)
        out = L.Dense(3, activation="softmax")(L.GRU(4)(x))
    elif kind == "merge_none":
        a, b = L.Bidirectional(L.LSTM(4, return_sequences=True), merge_mode=None)(x)
        out = L.Concatenate()([a, b])
    elif kind.startswith("merge_"):
        x = L.Bidirectional(L.GRU(5, return_sequences=True, reset_after=False), merge_mode=kind[6:])(x)
        out = L.TimeDistributed(L.Dense(3))(x)
    elif kind == "simplernn_mean":
        x = L.SpatialDropout1D(0.2)(L.SimpleRNN(5, return_sequences=True)(x))
        out = L.Activation("tanh")(L.GlobalAveragePooling1D()(x))
    elif kind == "return_state":
        y, h, c = L.LSTM(5, return_sequences=True, return_state=True)(x)
        out = [L.GlobalMaxPooling1D()(y), h, c]
    elif kind == "bidirectional_state":
        _, forward, backward = L.Bidirectional(L.GRU(4, return_state=True), merge_mode="sum")(x)
        out = L.Softmax()(L.Add()([forward, backward]))
    model = keras.Model(ids, out)
    rng = np.random.default_rng(0)
    model.set_weights([rng.normal(0, 0.5, w.shape).astype("float32") for w in model.get_weights()])
    return model


@pytest.mark.parametrize(
    "kind",
    [
        "bilstm_gru",
        "unmasked",
        "merge_sum",
        "merge_mul",
        "merge_ave",
        "merge_concat",
        "merge_none",
        "simplernn_mean",
        "return_state",
        "bidirectional_state",
    ],
)
def test_builtin_keras_models_export_with_native_ops_and_pass_parity(kind, tmp_path):
    model = _model(kind)
    proto = to_onnx(model, tmp_path / "model.onnx")  # raises unless ONNX Runtime equals Keras within 1e-5
    ops = {node.op_type for node in proto.graph.node}
    assert "Loop" not in ops and ops & {"RNN", "GRU", "LSTM"}
    assert onnx.load(str(tmp_path / "model.onnx")).opset_import[0].version >= 18
    assert len(proto.graph.output) == len(model.outputs)


def test_sequential_with_masking_and_a_clear_error_for_other_layers():
    model = keras.Sequential([keras.Input((7, 3)), L.Masking(0.0), L.LSTM(4, return_sequences=True), L.Dense(2)])
    assert "LSTM" in {node.op_type for node in to_onnx(model).graph.node}
    with pytest.raises(ValueError, match=r"layer 'conv' \(Conv1D\) is not supported .*supported: .*Bidirectional"):
        to_onnx(keras.Sequential([keras.Input((7, 3)), L.Conv1D(2, 3, name="conv")]))


def test_a_users_own_layer_exports_through_one_registered_handler():
    """The converter's registry is open: one decorator beside the handler, no list to edit."""
    from keras_seq.export.onnx.registry import HANDLERS, onnx_handler

    class Doubled(L.Layer):  # a layer of the user's, acting on the last axis
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.supports_masking = True

        def call(self, x):
            return x * 2.0

        def compute_output_shape(self, shape):
            return shape

    ids = keras.Input((None,), dtype="int32")
    x = L.LSTM(3, return_sequences=True)(L.Embedding(20, 4, mask_zero=True)(ids))
    model = keras.Model(ids, L.GlobalAveragePooling1D()(L.TimeDistributed(Doubled())(x)))
    with pytest.raises(ValueError, match=r"\(Doubled\) is not supported"):
        to_onnx(model)

    @onnx_handler(Doubled, per_step=True)
    def doubled(conv, layer, inputs, lengths):
        return conv.g.node("Mul", [inputs[0], conv.g.const("two", 2.0, np.float32)], layer.name)

    try:
        proto = to_onnx(model)  # parity with Keras, masked mean included, or it raises
        assert "Mul" in {node.op_type for node in proto.graph.node}
    finally:
        del HANDLERS[Doubled]


def test_parity_failure_raises():
    from keras_seq.export.onnx import keras_model as keras_to_onnx

    model = _model("bilstm_gru")
    proto = to_onnx(model, check=False)
    dense = model.layers[-1]
    dense.bias.assign(dense.bias + np.array([1.0, 0.0, 0.0], np.float32))  # the ONNX graph is now stale
    with pytest.raises(ValueError, match="ONNX parity: output .* differs from the Keras model"):
        keras_to_onnx.check_parity(model, proto)


def test_a_model_trained_under_jax_exports_with_parity():
    """Keras 3 users pick their backend: our layers and Keras' trained under JAX, then `to_onnx`
    (its parity check runs the JAX model against ONNX Runtime)."""
    from tests.helpers import run_python

    code = """
import keras, numpy as np, keras_seq
from keras_seq.export import to_onnx
ids = keras.Input((None,), dtype="int32", name="ids")
x = keras.layers.Embedding(30, 8, mask_zero=True)(ids)
x = keras.layers.Bidirectional(keras_seq.LSTM(8, return_sequences=True))(x)
x = keras_seq.SequencePooling("mean")(keras.layers.GRU(8, return_sequences=True)(x))
model = keras.Model(ids, keras.layers.Dense(2, activation="softmax")(x))
model.compile("adam", "sparse_categorical_crossentropy")
rng = np.random.default_rng(0)
data = rng.integers(1, 30, size=(64, 10)); data[::2, 6:] = 0
model.fit(data, rng.integers(0, 2, 64), epochs=1, verbose=0)
print(keras.backend.backend(), sorted({n.op_type for n in to_onnx(model).graph.node} & {"LSTM", "GRU", "Loop"}))
"""
    result = run_python(code, env={"KERAS_BACKEND": "jax"}, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == "jax ['GRU', 'LSTM']"
