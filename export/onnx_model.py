"""A trained keras_seq task model as an ONNX graph (opset `OPSET`).

The Keras functional graph is walked node by node and each layer becomes ONNX
operators: ``Embedding`` -> ``Gather``, our recurrent layers (alone or in a
``Bidirectional``) -> one native ``RNN`` / ``GRU`` / ``LSTM`` node
(`export.onnx_rnn`), ``SequencePooling`` and ``Dense`` -> a few elementwise
and reduction ops; ``Dropout`` is the identity at inference and the ``CRF``
layer passes its emissions through (Viterbi runs beside the graph, in
``serving.answers.viterbi``).

Graph inputs: ``ids`` (batch, time) int64, right-padded with 0, and for
character-feature taggers ``chars`` (batch, time, chars) int64. Language models
also take and return every layer's states (``state_<i>_h`` / ``state_<i>_c``,
(batch, units)), so the same graph scores a text and runs greedy steps.
"""
from __future__ import annotations

import numpy as np
import onnx

from keras_seq._keras_compat import functional_nodes
from keras_seq.export.onnx_graph import FLOAT, INT64, GraphBuilder
from keras_seq.export.onnx_rnn import add_recurrent

_DENSE_ACTIVATIONS = {"softmax": "Softmax", "relu": "Relu", "tanh": "Tanh", "sigmoid": "Sigmoid"}


class _Converter:
    def __init__(self, model, output: str, output_axes: list[str], stateful_inputs: bool) -> None:
        import keras_seq

        self.keras_seq = keras_seq
        self.model = model
        self.output, self.output_axes = output, output_axes
        self.stateful_inputs = stateful_inputs  # recurrent states as graph inputs and outputs (stepping)
        self.g = GraphBuilder(model.name)
        self.state_inputs: list[str] = []
        self.state_outputs: list[tuple[str, str]] = []  # (graph name, source)

    # -- masks ---------------------------------------------------------------
    def lengths_of(self, ids: str) -> str:
        """Row lengths (int32) from right-padded ids: the mask as `sequence_lens`."""
        g = self.g
        valid = g.node("Not", [g.node("Equal", [ids, g.const("zero", 0, np.int64)])])
        total = g.node("ReduceSum", [g.node("Cast", [valid], to=onnx.TensorProto.INT64),
                                     g.const("axis1", [1], np.int64)], "lengths64", keepdims=0)
        return g.node("Cast", [total], "lengths", to=onnx.TensorProto.INT32)

    # -- layers ----------------------------------------------------------------
    def embedding(self, layer, ids: str) -> str:
        return self.g.node("Gather", [self.g.const(f"{layer.name}_embeddings", layer.embeddings.numpy()), ids],
                           layer.name)

    def dense(self, layer, x: str) -> str:
        g = self.g
        y = g.node("MatMul", [x, g.const(f"{layer.name}_kernel", layer.kernel.numpy())], f"{layer.name}_matmul")
        if layer.use_bias:
            y = g.node("Add", [y, g.const(f"{layer.name}_bias", layer.bias.numpy())], f"{layer.name}_bias_add")
        name = getattr(layer.activation, "__name__", "")
        if name == "linear":
            return y
        if name not in _DENSE_ACTIVATIONS:
            raise ValueError(f"layer {layer.name!r}: activation {name!r} is not supported by the ONNX export")
        attrs = {"axis": -1} if name == "softmax" else {}
        return g.node(_DENSE_ACTIVATIONS[name], [y], layer.name, **attrs)

    def recurrent(self, layer, x: str, lengths: str) -> str:
        """A Recurrent or Bidirectional layer on batch-major x."""
        g = self.g
        if isinstance(layer, self.keras_seq.Recurrent):
            directions, sequences = [layer], layer.return_sequences
            if layer.go_backwards and sequences:
                raise ValueError(f"layer {layer.name!r}: go_backwards with return_sequences outside "
                                 "Bidirectional is not supported by the ONNX export")
            if layer.return_state:
                raise ValueError(f"layer {layer.name!r}: return_state is not supported by the ONNX export")
        else:
            if layer.merge_mode != "concat":
                raise ValueError(f"layer {layer.name!r}: only merge_mode='concat' is supported by the ONNX export")
            directions, sequences = [layer.forward_layer, layer.backward_layer], layer.forward_layer.return_sequences
        initial = None
        if self.stateful_inputs:
            initial = self._state_inputs(directions[0])
        y, states = add_recurrent(g, g.transpose(x, [1, 0, 2]), lengths, directions, layer.name, initial)
        if initial is not None:
            for name, state in zip(self.state_inputs[-len(states):], states):
                self.state_outputs.append((name[: -len("_in")], state))
        if sequences:  # (T, dirs, B, H) -> (B, T, dirs*H): forward then backward, as Bidirectional's concat
            return g.reshape(g.transpose(y, [2, 0, 1, 3]), [0, 0, -1])
        return g.reshape(g.transpose(states[0], [1, 0, 2]), [0, -1])

    def _state_inputs(self, layer) -> list[str]:
        """Graph inputs for one layer's initial states, as (1, B, H) for the node."""
        g = self.g
        index = sum(1 for n in self.state_inputs if n.endswith("_h_in"))
        names = []
        for suffix, size in zip(("h", "c"), layer.cell.state_size):
            name = g.add_input(f"state_{index}_{suffix}_in", FLOAT, ["batch", size])
            names.append(g.node("Unsqueeze", [name, g.const("axis0", [0], np.int64)], f"{name}_3d"))
            self.state_inputs.append(name)
        return names

    def pooling(self, layer, x: str, lengths: str) -> str:
        g = self.g
        steps = g.node("Squeeze", [g.shape_of(x, 1, 2)], "steps")
        positions = g.node("Range", [g.const("zero_i", 0, np.int64), steps, g.const("one_i", 1, np.int64)],
                           "positions")
        lengths64 = g.node("Cast", [lengths], to=onnx.TensorProto.INT64)
        column = g.node("Unsqueeze", [lengths64, g.const("axis1", [1], np.int64)])
        valid = g.node("Less", [g.node("Unsqueeze", [positions, g.const("axis0", [0], np.int64)]), column])
        axis1 = g.const("axis1", [1], np.int64)
        if layer.mode == "last":
            last = g.node("Sub", [column, g.const("one_i", 1, np.int64)])
            pick = g.node("Cast", [g.node("Equal", [g.node("Unsqueeze", [positions, g.const("axis0", [0], np.int64)]),
                                                     last])], to=onnx.TensorProto.FLOAT)
            picked = g.node("Mul", [x, g.node("Unsqueeze", [pick, g.const("axis2", [2], np.int64)])])
            return g.node("ReduceSum", [picked, axis1], layer.name, keepdims=0)
        valid3 = g.node("Unsqueeze", [valid, g.const("axis2", [2], np.int64)])
        if layer.mode == "mean":
            weights = g.node("Cast", [valid3], to=onnx.TensorProto.FLOAT)
            total = g.node("ReduceSum", [g.node("Mul", [x, weights]), axis1], keepdims=0)
            count = g.node("Max", [g.node("Cast", [column], to=onnx.TensorProto.FLOAT), g.const("one_f", [1.0], np.float32)])
            return g.node("Div", [total, count], layer.name)
        lowest = g.const("lowest", -3.0e38, np.float32)
        pooled = g.node("ReduceMax", [g.node("Where", [valid3, x, lowest]), axis1], keepdims=0)
        any_valid = g.node("Cast", [g.node("Greater", [column, g.const("zero_l", 0, np.int64)])],
                           to=onnx.TensorProto.FLOAT)
        return g.node("Mul", [pooled, any_valid], layer.name)

    def char_words(self, layer, chars: str) -> str:
        """CharacterWordEncoder: (B, T, C) ids -> (B, T, 2*units) final states of a bi-RNN over each word."""
        g = self.g
        width = g.shape_of(chars, 2, 3)
        flat = g.node("Reshape", [chars, g.node("Concat", [g.const("minus1", [-1], np.int64), width], axis=0)])
        char_lengths = self.lengths_of(flat)
        embedded = self.embedding(layer.embedding, flat)
        encoder = layer.encoder
        _, states = add_recurrent(g, g.transpose(embedded, [1, 0, 2]), char_lengths,
                                  [encoder.forward_layer, encoder.backward_layer], layer.name)
        words = g.transpose(states[0], [1, 0, 2])  # (N, 2, U)
        target = g.node("Concat", [g.shape_of(chars, 0, 2), g.const("char_width", [2 * layer.units], np.int64)],
                        axis=0)
        return g.node("Reshape", [words, target], layer.name)

    # -- the walk -----------------------------------------------------------------
    def convert(self) -> onnx.ModelProto:
        import keras

        g, ks = self.g, self.keras_seq
        names: dict[int, str] = {}
        model_inputs = self.model.inputs
        ids = g.add_input("ids", INT64, ["batch", "time"])
        names[id(model_inputs[0])] = ids
        if len(model_inputs) == 2:
            names[id(model_inputs[1])] = g.add_input("chars", INT64, ["batch", "time", "chars"])
        output = self.output
        g._used.add(output)  # graph output names stay free for `add_output`
        lengths = self.lengths_of(ids)
        for node in functional_nodes(self.model):
            layer = node.operation
            args = [names.get(id(t)) for t in node.input_tensors]
            if not isinstance(layer, keras.layers.Layer):
                # Keras ops between layers compute masks (ids != 0, ...); masks travel as
                # `lengths`. A layer that needs such an op's value as data fails below.
                out = None
            elif args[0] is None:
                raise ValueError(f"layer {layer.name!r} reads a value computed by a raw Keras op; "
                                 "the ONNX export supports layers only")
            elif isinstance(layer, keras.layers.Embedding):
                out = self.embedding(layer, args[0])
            elif isinstance(layer, (keras.layers.Dropout, ks.CRF)):
                out = args[0]
            elif isinstance(layer, ks.CharacterWordEncoder):
                out = self.char_words(layer, args[0])
            elif isinstance(layer, keras.layers.Concatenate):
                out = g.node("Concat", args, layer.name, axis=layer.axis)
            elif isinstance(layer, (ks.Recurrent, keras.layers.Bidirectional)):
                out = self.recurrent(layer, args[0], lengths)
            elif isinstance(layer, ks.SequencePooling):
                out = self.pooling(layer, args[0], lengths)
            elif isinstance(layer, keras.layers.Dense):
                out = self.dense(layer, args[0])
            else:
                raise ValueError(f"layer {layer.name!r} ({type(layer).__name__}) is not supported by the "
                                 "ONNX export")
            for tensor in node.outputs:
                names[id(tensor)] = out
        g._used.discard(output)
        g.add_output(names[id(self.model.outputs[0])], output, FLOAT, self.output_axes)
        for name, state in self.state_outputs:
            squeezed = g.node("Squeeze", [state, g.const("axis0", [0], np.int64)])
            g.add_output(squeezed, name, FLOAT, ["batch", "units"])
        return g


def model_to_onnx(model, output: str, output_axes: list[str], metadata: dict[str, str], *,
                  stateful_inputs: bool = False, doc: str = "keras-seq model") -> onnx.ModelProto:
    """The ONNX model of a keras_seq model; `onnx.checker` passes on it."""
    graph = _Converter(model, output, output_axes, stateful_inputs).convert()
    onnx_model = graph.model(metadata, doc=doc)
    onnx.checker.check_model(onnx_model, full_check=True)
    return onnx_model
