"""The ONNX writers of the layers the converter supports, each registered beside itself
(`keras_seq.export.onnx.registry.onnx_handler`): ``Embedding`` -> ``Gather``, our recurrent
layers and Keras' (alone or in a ``Bidirectional``) -> one native ``RNN`` / ``GRU`` / ``LSTM``
node (`keras_seq.export.onnx.recurrent`), ``SequencePooling`` and ``Dense`` -> a few elementwise
and reduction ops, ``ContextualCharEmbedding`` -> two native nodes over the sentence strings;
``Dropout`` is the identity at inference and the ``CRF`` layer passes its emissions through
(Viterbi runs beside the graph, in `keras_seq.serving.scoring.viterbi`).
"""

from __future__ import annotations

import keras
import numpy as np
import onnx

import keras_seq
from keras_seq.export.onnx.recurrent import add_recurrent
from keras_seq.export.onnx.registry import DROP, handler_for, onnx_handler

_ACTIVATIONS = {"softmax": "Softmax", "relu": "Relu", "tanh": "Tanh", "sigmoid": "Sigmoid"}
layers = keras.layers


# -- pass-through and per-step layers -------------------------------------------------------------------
@onnx_handler(
    layers.Dropout, layers.SpatialDropout1D, layers.GaussianNoise, layers.GaussianDropout, keras_seq.CRF, per_step=True
)
def identity(conv, layer, inputs, lengths):
    """Inactive at inference; the CRF's emissions are its output (decoding runs beside the graph)."""
    return inputs[0]


def apply_activation(conv, layer, x: str) -> str:
    """The layer's `activation` on x (Dense, Activation)."""
    name = getattr(layer.activation, "__name__", "")
    if name == "linear":
        return x
    if name not in _ACTIVATIONS:
        raise ValueError(f"layer {layer.name!r}: activation {name!r} is not supported by the ONNX export")
    return conv.g.node(_ACTIVATIONS[name], [x], layer.name, **({"axis": -1} if name == "softmax" else {}))


@onnx_handler(layers.Activation, per_step=True)
def activation(conv, layer, inputs, lengths):
    return apply_activation(conv, layer, inputs[0])


@onnx_handler(layers.Dense, per_step=True)
def dense(conv, layer, inputs, lengths):
    g = conv.g
    y = g.node("MatMul", [inputs[0], g.const(f"{layer.name}_kernel", layer.kernel.numpy())], f"{layer.name}_matmul")
    if layer.use_bias:
        y = g.node("Add", [y, g.const(f"{layer.name}_bias", layer.bias.numpy())], f"{layer.name}_bias_add")
    return apply_activation(conv, layer, y)


@onnx_handler(layers.Softmax, per_step=True)
def softmax(conv, layer, inputs, lengths):
    axis = layer.axis if isinstance(layer.axis, int) else layer.axis[-1]
    return conv.g.node("Softmax", [inputs[0]], layer.name, axis=axis)


@onnx_handler(layers.TimeDistributed)
def time_distributed(conv, layer, inputs, lengths):
    inner = layer.layer
    handler = handler_for(inner)
    if not handler.per_step:
        raise ValueError(
            f"layer {layer.name!r}: TimeDistributed({type(inner).__name__}) is not supported "
            "by the ONNX export (Dense, Activation, Softmax, Dropout are)"
        )
    return handler.write(conv, inner, inputs, lengths)  # these act on the last axis: the same on every step


@onnx_handler(layers.Concatenate)
def concatenate(conv, layer, inputs, lengths):
    return conv.g.node("Concat", list(inputs), layer.name, axis=layer.axis)


@onnx_handler(layers.Add)
def add(conv, layer, inputs, lengths):
    out = inputs[0]
    for other in inputs[1:]:
        out = conv.g.node("Add", [out, other], layer.name)
    return out


# -- embeddings and masks --------------------------------------------------------------------------------
def _embedding_mask(conv, layer, lengths, inputs):
    return conv.lengths_of(inputs[0]) if layer.mask_zero else None


def embed(conv, layer, ids: str) -> str:
    return conv.g.node("Gather", [conv.g.const(f"{layer.name}_embeddings", layer.embeddings.numpy()), ids], layer.name)


@onnx_handler(layers.Embedding, mask=_embedding_mask)
def embedding(conv, layer, inputs, lengths):
    return embed(conv, layer, inputs[0])


@onnx_handler(layers.Masking, mask=lambda conv, layer, lengths, inputs: conv.mask_lengths[layer.name])
def masking(conv, layer, inputs, lengths):
    """Masking: the mask (a step is kept when any feature differs from mask_value) becomes
    lengths; the values pass through (Keras also zeroes masked steps: done here too)."""
    g, x = conv.g, inputs[0]
    keep = g.node("Not", [g.node("Equal", [x, g.const("mask_value", layer.mask_value, np.float32)])])
    any_kept = g.node(
        "ReduceMax", [g.node("Cast", [keep], to=onnx.TensorProto.FLOAT), g.const("axis2", [2], np.int64)], keepdims=1
    )  # (B, T, 1): 1.0 where the step is kept
    conv.mask_lengths[layer.name] = g.node(
        "Cast",
        [
            g.node(
                "ReduceSum",
                [g.node("Squeeze", [any_kept, g.const("axis2", [2], np.int64)]), g.const("axis1", [1], np.int64)],
                keepdims=0,
            )
        ],
        f"{layer.name}_lengths",
        to=onnx.TensorProto.INT32,
    )
    return g.node("Mul", [x, any_kept], layer.name)


# -- pooling -------------------------------------------------------------------------------------------
def masked_pool(conv, name: str, x: str, lengths: str, mode: str) -> str:
    """last | mean | max over the valid steps of batch-major x."""
    g = conv.g
    positions, column = conv.step_grid(x, lengths)
    axis1 = g.const("axis1", [1], np.int64)
    if mode == "last":
        last = g.node("Sub", [column, g.const("one_i", 1, np.int64)])
        pick = g.node("Cast", [g.node("Equal", [positions, last])], to=onnx.TensorProto.FLOAT)
        picked = g.node("Mul", [x, g.node("Unsqueeze", [pick, g.const("axis2", [2], np.int64)])])
        return g.node("ReduceSum", [picked, axis1], name, keepdims=0)
    valid3 = g.node("Unsqueeze", [g.node("Less", [positions, column]), g.const("axis2", [2], np.int64)])
    if mode == "mean":
        weights = g.node("Cast", [valid3], to=onnx.TensorProto.FLOAT)
        total = g.node("ReduceSum", [g.node("Mul", [x, weights]), axis1], keepdims=0)
        count = g.node(
            "Max", [g.node("Cast", [column], to=onnx.TensorProto.FLOAT), g.const("one_f", [1.0], np.float32)]
        )
        return g.node("Div", [total, count], name)
    lowest = g.const("lowest", -3.0e38, np.float32)
    pooled = g.node("ReduceMax", [g.node("Where", [valid3, x, lowest]), axis1], keepdims=0)
    any_valid = g.node("Cast", [g.node("Greater", [column, g.const("zero_l", 0, np.int64)])], to=onnx.TensorProto.FLOAT)
    return g.node("Mul", [pooled, any_valid], name)


@onnx_handler(keras_seq.SequencePooling, mask=DROP)
def sequence_pooling(conv, layer, inputs, lengths):
    return masked_pool(conv, layer.name, inputs[0], lengths, layer.mode)


@onnx_handler(layers.GlobalAveragePooling1D, layers.GlobalMaxPooling1D, mask=DROP)
def global_pooling(conv, layer, inputs, lengths):
    """GlobalAveragePooling1D honours the mask (as Keras does); GlobalMaxPooling1D does not
    support masking in Keras 3, so it takes every step."""
    g, x = conv.g, inputs[0]
    axis = g.const("axis1", [1], np.int64)
    if isinstance(layer, layers.GlobalAveragePooling1D) and lengths is not None:
        pooled = masked_pool(conv, layer.name, x, lengths, "mean")
    elif isinstance(layer, layers.GlobalAveragePooling1D):
        pooled = g.node("ReduceMean", [x, axis], layer.name, keepdims=0)
    else:
        pooled = g.node("ReduceMax", [x, axis], layer.name, keepdims=0)
    if getattr(layer, "keepdims", False):
        pooled = g.node("Unsqueeze", [pooled, axis])
    return pooled


# -- recurrent layers ----------------------------------------------------------------------------------
def _recurrent_mask(conv, layer, lengths, inputs):
    sequences = getattr(layer, "return_sequences", None)
    if sequences is None:
        sequences = layer.forward_layer.return_sequences
    return lengths if sequences else None


def _split_directions(conv, value: str, count: int, axis: int) -> list[str]:
    if count == 1:
        return [value]
    return conv.g.node("Split", [value, conv.g.const("halves", [1, 1], np.int64)], "directions", outputs=2, axis=axis)


def _squeeze0(conv, value: str) -> str:
    return conv.g.node("Squeeze", [value, conv.g.const("axis0", [0], np.int64)])


def _merge(conv, parts: list[str], mode: str | None, name: str):
    g = conv.g
    if mode is None:
        return parts
    if mode == "concat":
        return g.node("Concat", parts, name, axis=-1)
    if mode in ("sum", "ave"):
        total = g.node("Add", parts, name if mode == "sum" else None)
        return total if mode == "sum" else g.node("Mul", [total, g.const("half", 0.5, np.float32)], name)
    if mode == "mul":
        return g.node("Mul", parts, name)
    raise ValueError(f"layer {name!r}: merge_mode {mode!r} is not supported by the ONNX export")


def _carry_last_output(conv, y: str, lengths: str) -> str:
    """Keras (``zero_output_for_mask=False``) repeats the last valid output at padded steps,
    where ONNX's node outputs zeros: take y[b, min(t, length_b - 1)]."""
    g = conv.g
    positions, column = conv.step_grid(y, lengths)
    last = g.node("Sub", [column, g.const("one_i", 1, np.int64)])
    index = g.node("Max", [g.node("Min", [positions, last]), g.const("zero_i", 0, np.int64)])  # (B, T)
    index = g.node("Expand", [g.node("Unsqueeze", [index, g.const("axis2", [2], np.int64)]), g.node("Shape", [y])])
    return g.node("GatherElements", [y, index], "carried", axis=1)


@onnx_handler(keras_seq.Recurrent, layers.RNN, layers.Bidirectional, mask=_recurrent_mask)
def recurrent(conv, layer, inputs, lengths):
    """A recurrent layer (ours or Keras' SimpleRNN / GRU / LSTM) or a Bidirectional of two,
    on batch-major x -> one native node. Returns the layer's output, or its list of
    outputs with ``return_state`` / ``merge_mode=None``."""
    g = conv.g
    if isinstance(layer, layers.Bidirectional):
        directions = [layer.forward_layer, layer.backward_layer]
        merge = layer.merge_mode
    else:
        directions, merge = [layer], None
        if layer.go_backwards and layer.return_sequences:
            raise ValueError(
                f"layer {layer.name!r}: go_backwards with return_sequences outside "
                "Bidirectional is not supported by the ONNX export"
            )
    first = directions[0]
    if getattr(first, "stateful", False) and not conv.stateful_inputs:
        raise ValueError(f"layer {layer.name!r}: stateful layers are not supported by the ONNX export")
    sequences, with_states = first.return_sequences, first.return_state
    initial = conv.state_inputs_for(first) if conv.stateful_inputs else None
    y, states = add_recurrent(g, g.transpose(inputs[0], [1, 0, 2]), lengths, directions, layer.name, initial)
    if initial is not None:
        for name, state in zip(conv.state_inputs[-len(states) :], states):
            conv.state_outputs.append((name[: -len("_in")], state))
    if sequences and len(directions) == 1:  # Y (T, 1, B, H) -> (B, T, H)
        out = g.reshape(g.transpose(y, [2, 0, 1, 3]), [0, 0, -1])
        if lengths is not None and not getattr(first, "zero_output_for_mask", False):
            out = _carry_last_output(conv, out, lengths)
    elif sequences:  # Y (T, 2, B, H)
        if merge == "concat":  # -> (B, T, dirs*H): forward then backward, as Bidirectional's concat
            out = g.reshape(g.transpose(y, [2, 0, 1, 3]), [0, 0, -1])
        else:
            parts = [g.transpose(part, [2, 0, 1, 3]) for part in _split_directions(conv, y, len(directions), 1)]
            out = _merge(conv, [g.reshape(p, [0, 0, -1]) for p in parts], merge, layer.name)
    elif merge == "concat" or len(directions) == 1:  # Y_h (dirs, B, H) -> (B, dirs*H)
        out = g.reshape(g.transpose(states[0], [1, 0, 2]), [0, -1])
    else:
        out = _merge(conv, [_squeeze0(conv, p) for p in _split_directions(conv, states[0], 2, 0)], merge, layer.name)
    if not with_states:
        return out
    # return_state: h (and c) of each direction, as (B, H)
    finals = []
    for d in range(len(directions)):
        for state in states:
            finals.append(_squeeze0(conv, _split_directions(conv, state, len(directions), 0)[d]))
    return [*(out if isinstance(out, list) else [out]), *finals]


@onnx_handler(keras_seq.CharacterWordEncoder, mask=DROP)
def char_words(conv, layer, inputs, lengths):
    """CharacterWordEncoder: (B, T, C) ids -> (B, T, 2*units) final states of a bi-RNN over each word."""
    g, chars = conv.g, inputs[0]
    width = g.shape_of(chars, 2, 3)
    flat = g.node("Reshape", [chars, g.node("Concat", [g.const("minus1", [-1], np.int64), width], axis=0)])
    char_lengths = conv.lengths_of(flat)
    embedded = embed(conv, layer.embedding, flat)
    encoder = layer.encoder
    _, states = add_recurrent(
        g, g.transpose(embedded, [1, 0, 2]), char_lengths, [encoder.forward_layer, encoder.backward_layer], layer.name
    )
    words = g.transpose(states[0], [1, 0, 2])  # (N, 2, U)
    target = g.node("Concat", [g.shape_of(chars, 0, 2), g.const("char_width", [2 * layer.units], np.int64)], axis=0)
    return g.node("Reshape", [words, target], layer.name)


def _nonzero(conv, ids: str) -> str:
    """1 where an id is not padding, else 0 (int64)."""
    g = conv.g
    return g.node(
        "Cast", [g.node("Not", [g.node("Equal", [ids, g.const("zero", 0, np.int64)])])], to=onnx.TensorProto.INT64
    )


@onnx_handler(keras_seq.ContextualCharEmbedding, mask=DROP)
def char_context(conv, layer, inputs, lengths):
    """ContextualCharEmbedding: the sentence strings (TopK orders the valid slots first, as the layer's
    argsort), one native node per character LM (the backward one on ReverseSequence's string), and the
    states at each word's last and first characters (GatherElements)."""
    g, chars = conv.g, inputs[0]
    axis1, axis2 = g.const("axis1", [1], np.int64), g.const("axis2", [2], np.int64)
    zero, one = g.const("zero_i", 0, np.int64), g.const("one_i", 1, np.int64)
    words = g.node("ReduceMax", [_nonzero(conv, chars), axis2], keepdims=0)  # (B, L): 1 for a word
    separator = g.node(
        "Unsqueeze", [g.node("Mul", [words, g.const("separator", layer.char_vocab_size, np.int64)]), axis2]
    )
    slots = g.reshape(g.node("Concat", [separator, chars], axis=2), [0, -1])  # (B, S)
    valid = _nonzero(conv, slots)
    width = g.shape_of(slots, 1, 2)
    position = g.node(
        "Unsqueeze", [g.node("Range", [zero, g.node("Squeeze", [width]), one]), g.const("axis0", [0], np.int64)]
    )
    key = g.node("Add", [position, g.node("Mul", [g.node("Sub", [one, valid]), width])])
    _, order = g.node("TopK", [key, width], "string_order", outputs=2, axis=1, largest=0, sorted=1)
    packed = g.node("GatherElements", [slots, order], "strings", axis=1)
    string_lengths = g.node("ReduceSum", [valid, axis1], keepdims=0)  # (B,)
    longest = g.node("Max", [g.node("ReduceMax", [string_lengths], keepdims=1), one])  # the loops' steps
    packed = g.node("Slice", [packed, g.const("start0", [0], np.int64), longest, axis1], "strings_cut")
    lengths32 = g.node("Cast", [string_lengths], to=onnx.TensorProto.INT32)
    block = g.node("Add", [g.shape_of(chars, 2, 3), one])
    counted = g.node(
        "Reshape", [g.node("CumSum", [valid, one]), g.node("Concat", [g.shape_of(chars, 0, 2), block], axis=0)]
    )
    end = g.node(
        "Max", [g.node("Sub", [g.node("Gather", [counted, g.const("last", -1, np.int64)], axis=2), one]), zero]
    )
    start = g.node("Gather", [counted, zero], axis=2)  # the first character's position (<= its string's length)
    start = g.node(
        "Max", [g.node("Sub", [g.node("Sub", [g.node("Unsqueeze", [string_lengths, axis1]), one]), start]), zero]
    )
    reversed_strings = g.node("ReverseSequence", [packed, string_lengths], batch_axis=0, time_axis=1)
    halves = []
    for lm, embedding, strings, steps in (
        (layer.forward_lm, layer.forward_embedding, packed, end),
        (layer.backward_lm, layer.backward_embedding, reversed_strings, start),
    ):
        x = g.transpose(embed(conv, embedding, strings), [1, 0, 2])
        y, _ = add_recurrent(g, x, lengths32, [lm], f"{layer.name}_{lm.name}")
        states = g.reshape(g.transpose(y, [2, 0, 1, 3]), [0, 0, -1])  # (B, S, H)
        target = g.node("Concat", [g.shape_of(chars, 0, 2), g.const("lm_units", [layer.units], np.int64)], axis=0)
        index = g.node("Expand", [g.node("Unsqueeze", [steps, axis2]), target])
        halves.append(g.node("GatherElements", [states, index], f"{layer.name}_{lm.name}_words", axis=1))
    features = g.node("Concat", halves, axis=2)
    return g.node(
        "Mul", [features, g.node("Unsqueeze", [g.node("Cast", [words], to=onnx.TensorProto.FLOAT), axis2])], layer.name
    )
