"""`to_onnx`: any functional or Sequential Keras 3 model built from recurrent layers ->
ONNX with native ``RNN`` / ``GRU`` / ``LSTM`` nodes, checked against the model.

``keras.Model.export(format="onnx")`` goes through tf2onnx, which turns a masked
Keras RNN into a generic ``Loop`` (slow in ONNX Runtime, and a known open
tf2onnx problem); this maps each layer onto ONNX's own operators instead
(`keras_seq.export.onnx.converter`), for Keras' built-in ``SimpleRNN`` / ``GRU`` /
``LSTM`` as well as this package's layers.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import onnx

from keras_seq._keras_compat import functional_nodes
from keras_seq.export.onnx.converter import Converter

DEFAULT_BATCH, DEFAULT_STEPS = 4, 9


def _names(tensors, fallback: str) -> list[str]:
    names, seen = [], set()
    for i, tensor in enumerate(tensors):
        name = re.sub(r"[^A-Za-z0-9_]", "_", str(getattr(tensor, "name", "") or f"{fallback}_{i}"))
        name = name if name not in seen else f"{name}_{i}"
        seen.add(name)
        names.append(name)
    return names


def _axes(tensor) -> list[str]:
    return ["batch", "time", *[f"d{k}" for k in range(2, len(tensor.shape))]][: len(tensor.shape)]


def to_onnx(
    model,
    path: str | Path | None = None,
    *,
    sample_inputs=None,
    check: bool = True,
    atol: float = 1e-5,
    metadata: dict[str, str] | None = None,
) -> onnx.ModelProto:
    """The ONNX model of `model` (opset 18, ``onnx.checker`` full check), saved to `path` if given.

    Supported layers: Embedding (``mask_zero`` or not), Masking, this package's
    Elman / GRU / LSTM and Keras' SimpleRNN / GRU (both ``reset_after``) / LSTM,
    alone, stacked or in Bidirectional (every ``merge_mode``), with
    ``return_sequences`` and ``return_state``; Dropout / SpatialDropout1D, Dense,
    TimeDistributed(Dense), GlobalAveragePooling1D / GlobalMaxPooling1D,
    Concatenate / Add, Activation / Softmax; SequencePooling, CharacterWordEncoder,
    ContextualCharEmbedding and CRF (its emissions). Any other layer raises a ValueError naming it and
    listing these. Masks must be right padding (as from ``mask_zero`` on padded ids).

    With `check` (the default), the ONNX Runtime outputs must equal the model's on
    `sample_inputs` (or generated right-padded inputs) within `atol`, or it raises;
    steps past each row's length are not compared (ONNX's RNNs output zeros there).

    Example:

    >>> import keras
    >>> from keras_seq.export import to_onnx
    >>> ids = keras.Input((None,), dtype="int32")
    >>> x = keras.layers.Embedding(100, 8, mask_zero=True)(ids)
    >>> x = keras.layers.Bidirectional(keras.layers.LSTM(8, return_sequences=True))(x)
    >>> x = keras.layers.GRU(8)(x)
    >>> model = keras.Model(ids, keras.layers.Dense(2, activation="softmax")(x))
    >>> sorted({node.op_type for node in to_onnx(model).graph.node} & {"LSTM", "GRU", "Loop"})
    ['GRU', 'LSTM']
    """
    import keras

    if not getattr(model, "inputs", None):
        raise ValueError(
            "to_onnx needs a functional or Sequential model with known inputs "
            "(build a Sequential model with an Input first)"
        )
    if isinstance(model, keras.Sequential):  # the same layers (and weights) called on an Input
        x = first = keras.Input(batch_shape=model.inputs[0].shape, dtype=model.inputs[0].dtype, name="input")
        for layer in model.layers:
            x = layer(x)
        model = keras.Model(first, x, name=model.name)
    inputs, outputs = _names(model.inputs, "input"), _names(model.outputs, "output")
    outputs = [f"{name}_out" if name in inputs else name for name in outputs]
    graph = Converter(model, outputs, [_axes(t) for t in model.outputs], False, inputs).convert()
    proto = graph.model(metadata or {}, doc=f"{model.name}, exported by keras_seq.export.to_onnx")
    onnx.checker.check_model(proto, full_check=True)
    if check:
        check_parity(model, proto, sample_inputs, atol)
    if path is not None:
        onnx.save(proto, str(path))
    return proto


def _vocab_of(model, tensor) -> int:
    """The input_dim of the Embedding reading `tensor` (ids must stay below it)."""
    import keras

    for node in functional_nodes(model):
        if isinstance(node.operation, keras.layers.Embedding) and node.input_tensors[0] is tensor:
            return int(node.operation.input_dim)
    return 50


def generated_inputs(model, seed: int = 0) -> list[np.ndarray]:
    """Right-padded inputs of every length from 1 to the full width (and one empty row)."""
    rng = np.random.default_rng(seed)
    out = []
    for tensor in model.inputs:
        steps = tensor.shape[1] or DEFAULT_STEPS
        lengths = np.array([steps, 1, max(1, steps // 2), steps - 1 or 1])[:DEFAULT_BATCH]
        if "int" in str(tensor.dtype):
            data = rng.integers(1, max(2, _vocab_of(model, tensor)), size=(len(lengths), steps, *tensor.shape[2:]))
        else:
            data = rng.normal(0, 1, size=(len(lengths), steps, *tensor.shape[2:])).astype(np.float32)
        for row, n in enumerate(lengths):
            data[row, n:] = 0
        out.append(data)
    return out


def _valid_steps(inputs: list[np.ndarray]) -> np.ndarray:
    first = inputs[0]
    return (first != 0) if first.ndim == 2 else (first != 0).any(axis=tuple(range(2, first.ndim)))


def check_parity(model, proto: onnx.ModelProto, sample_inputs=None, atol: float = 1e-5) -> float:
    """Runs `model` and `proto` (ONNX Runtime) on the same inputs; raises ValueError when an
    output differs by more than `atol` (at valid steps); returns the largest difference."""
    import onnxruntime as ort

    inputs = generated_inputs(model) if sample_inputs is None else sample_inputs
    inputs = [np.asarray(x) for x in (inputs if isinstance(inputs, (list, tuple)) else [inputs])]
    want = model(inputs if len(inputs) > 1 else inputs[0], training=False)
    want = [np.asarray(w) for w in (want if isinstance(want, (list, tuple)) else [want])]
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    feed = {
        i.name: x.astype(np.int64 if i.type == "tensor(int64)" else np.float32)
        for i, x in zip(session.get_inputs(), inputs)
    }
    got = session.run(None, feed)
    valid = _valid_steps(inputs)
    worst = 0.0
    for output, expected, actual in zip(session.get_outputs(), want, got):
        if expected.shape != actual.shape:
            raise ValueError(
                f"ONNX parity: output {output.name!r} has shape {actual.shape}, the model's {expected.shape}"
            )
        if expected.ndim >= 3 and expected.shape[:2] == valid.shape:  # per-step: compare the valid steps
            expected, actual = expected[valid], actual[valid]
        diff = float(np.max(np.abs(expected - actual))) if expected.size else 0.0
        if not diff <= atol:
            raise ValueError(
                f"ONNX parity: output {output.name!r} differs from the Keras model by {diff:.3g} (> {atol:g})"
            )
        worst = max(worst, diff)
    return worst
