"""An attentional encoder-decoder (`keras_seq.build_seq2seq`) as two ONNX graphs; beam
search runs in NumPy beside them (`keras_seq.serving.encoder_decoder`).

* ``model.onnx``, the encoder: ``ids`` (batch, time) -> ``memory`` (batch, time, M), the
  decoder's initial states ``state_h`` (and ``state_c``) (batch, H) and, for additive
  attention, ``keys`` = memory W_m + b (batch, time, A), computed once per source. Native
  RNN / GRU / LSTM nodes, as every task's graph.
* ``decoder_step.onnx``, one target step: ``token`` (rows,), the states, ``attentional``
  (rows, H) (input feeding only), ``memory``, ``memory_mask`` (rows, time) bool (and
  ``keys``) -> ``log_probs`` (rows, V), the new states, the new ``attentional`` (input
  feeding only) and the attention ``weights`` (rows, time). The cell is one native node
  over one time step, its input the target embedding (concatenated with the attentional
  vector under input feeding). The runtimes take the carry's names from the graph.
"""

from __future__ import annotations

import numpy as np
import onnx

from keras_seq.contracts.export_dir import DECODER_STEP_FILE, ONNX_MODEL_FILE
from keras_seq.export.onnx.converter import Converter
from keras_seq.export.onnx.graph import FLOAT, INT64, GraphBuilder
from keras_seq.export.onnx.recurrent import add_recurrent

STATE_NAMES = ("state_h", "state_c")


class _CellLayer:
    """What `onnx_rnn.cell_arrays` reads from a layer, for the decoder's bare cell."""

    def __init__(self, cell, name: str) -> None:
        self.cell, self.name, self.go_backwards = cell, name, False


def _encoder_graph(stepper, metadata: dict) -> onnx.ModelProto:
    decoder = stepper.decoder
    states = [STATE_NAMES[k] for k in range(len(decoder.state_size))]
    axes = [["batch", "time", "features"]] + [["batch", "units"]] * len(states)
    g = Converter(stepper.encoder, ["memory", *states], axes, False, ["ids"]).convert()
    attention = decoder.attention
    if attention is not None and hasattr(attention, "memory_kernel"):  # additive: W_m m_s + b, once per source
        keys = g.node(
            "Add",
            [
                g.node("MatMul", ["memory", g.const("memory_kernel", attention.memory_kernel.numpy())]),
                g.const("attention_bias", attention.bias.numpy()),
            ],
        )
        g.add_output(keys, "keys", FLOAT, ["batch", "time", "attention_units"])
    return _checked(g.model(metadata, doc="keras-seq seq2seq encoder"))


def _masked_softmax(g: GraphBuilder, scores: str, mask: str) -> str:
    """Softmax over the valid steps; padded steps (and all-padded rows) get exactly 0."""
    lowest = g.const("lowest", -1e9, np.float32)
    weights = g.node("Softmax", [g.node("Where", [mask, scores, lowest])], axis=-1)
    return g.node("Where", [mask, weights, g.const("zero_f", 0.0, np.float32)], "attention_weights")


def _scores(g: GraphBuilder, attention, h: str) -> str:
    """(rows, time) attention scores of the query h (rows, H) over the memory."""
    axis1 = g.const("axis1", [1], np.int64)
    if hasattr(attention, "memory_kernel"):  # additive: v . tanh(W_q h + keys)
        query = g.node(
            "Unsqueeze", [g.node("MatMul", [h, g.const("query_kernel", attention.query_kernel.numpy())]), axis1]
        )
        hidden = g.node("Tanh", [g.node("Add", [query, "keys"])])
        product = g.node("Mul", [hidden, g.const("score_vector", attention.score_vector.numpy())])
        return g.node("ReduceSum", [product, g.const("axis_last", [-1], np.int64)], "scores", keepdims=0)
    if getattr(attention, "scale", False):
        raise ValueError("scaled multiplicative attention is not supported by the ONNX export")
    query = (
        h if attention.score == "dot" else g.node("MatMul", [h, g.const("attention_kernel", attention.kernel.numpy())])
    )
    scores = g.node("MatMul", [g.node("Unsqueeze", [query, axis1]), g.transpose("memory", [0, 2, 1])])
    return g.node("Squeeze", [scores, axis1], "scores")


def _step_graph(stepper, metadata: dict) -> onnx.ModelProto:
    decoder, cell = stepper.decoder, stepper.decoder.cell
    units, attention = decoder.units, decoder.attention
    g = GraphBuilder("decoder_step")
    token = g.add_input("token", INT64, ["rows"])
    states = [g.add_input(STATE_NAMES[k], FLOAT, ["rows", units]) for k in range(len(decoder.state_size))]
    inputs = [g.node("Gather", [g.const("target_embeddings", stepper.embedding.embeddings.numpy()), token])]
    if decoder.feeds_input:
        inputs.append(g.add_input("attentional", FLOAT, ["rows", units]))
    memory = g.add_input("memory", FLOAT, ["rows", "time", "features"])
    mask = g.add_input("memory_mask", onnx.TensorProto.BOOL, ["rows", "time"])
    if attention is not None and hasattr(attention, "memory_kernel"):
        g.add_input("keys", FLOAT, ["rows", "time", "attention_units"])
    axis0 = g.const("axis0", [0], np.int64)
    x = g.node("Unsqueeze", [g.node("Concat", inputs, axis=1) if len(inputs) > 1 else inputs[0], axis0])
    initial = [g.node("Unsqueeze", [s, axis0]) for s in states]
    _, finals = add_recurrent(g, x, None, [_CellLayer(cell, "decoder_cell")], "decoder_cell", initial)
    finals = [g.node("Squeeze", [s, axis0]) for s in finals]
    h = finals[0]
    output = h
    if attention is not None:
        weights = _masked_softmax(g, _scores(g, attention, h), mask)
        context = g.node(
            "Squeeze",
            [
                g.node("MatMul", [g.node("Unsqueeze", [weights, g.const("axis1", [1], np.int64)]), memory]),
                g.const("axis1", [1], np.int64),
            ],
        )
        output = g.node(
            "Tanh",
            [
                g.node(
                    "MatMul",
                    [g.node("Concat", [context, h], axis=1), g.const("combine_kernel", decoder.combine_kernel.numpy())],
                )
            ],
        )
    else:  # the plain encoder-decoder: the memory is not read; weights are zeros
        weights = g.node("Mul", [g.node("Cast", [mask], to=FLOAT), g.const("zero_f", 0.0, np.float32)])
    logits = g.node("MatMul", [output, g.const("logits_kernel", stepper.logits.kernel.numpy())])
    logits = g.node("Add", [logits, g.const("logits_bias", stepper.logits.bias.numpy())])
    g.add_output(g.node("LogSoftmax", [logits], axis=-1), "log_probs", FLOAT, ["rows", "targets"])
    for k, state in enumerate(finals):
        g.add_output(state, f"{STATE_NAMES[k]}_out", FLOAT, ["rows", units])
    if decoder.feeds_input:
        g.add_output(output, "attentional_out", FLOAT, ["rows", units])
    g.add_output(weights, "weights", FLOAT, ["rows", "time"])
    return _checked(g.model(metadata, doc="keras-seq seq2seq decoder step"))


def _checked(model: onnx.ModelProto) -> onnx.ModelProto:
    onnx.checker.check_model(model, full_check=True)
    return model


def seq2seq_to_onnx(model, metadata: dict[str, str]) -> dict[str, onnx.ModelProto]:
    """file name -> graph: the encoder (``model.onnx``) and the decoder step."""
    import keras_seq

    stepper = keras_seq.Seq2SeqStepper(model)
    return {ONNX_MODEL_FILE: _encoder_graph(stepper, metadata), DECODER_STEP_FILE: _step_graph(stepper, metadata)}
