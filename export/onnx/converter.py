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
from keras_seq.export.onnx.graph import FLOAT, INT64, GraphBuilder
from keras_seq.export.onnx.recurrent import add_recurrent

_DENSE_ACTIVATIONS = {"softmax": "Softmax", "relu": "Relu", "tanh": "Tanh", "sigmoid": "Sigmoid"}


class _Converter:
    """Walks a functional Keras model; `handlers` maps each supported layer class to the
    method that writes its ONNX nodes (looked up along the class's MRO)."""

    def __init__(self, model, output_names: list[str], output_axes: list[list[str]], stateful_inputs: bool,
                 input_names: list[str]) -> None:
        import keras

        import keras_seq

        self.keras, self.keras_seq = keras, keras_seq
        self.model = model
        self.output_names, self.output_axes, self.input_names = output_names, output_axes, input_names
        self.stateful_inputs = stateful_inputs  # recurrent states as graph inputs and outputs (stepping)
        self.g = GraphBuilder(model.name)
        self.state_inputs: list[str] = []
        self.state_outputs: list[tuple[str, str]] = []  # (graph name, source)
        self.mask_lengths: dict[str, str] = {}
        self.first_ids: str | None = None
        self._default_lengths: str | None = None

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
        return self.activation(layer, y)

    def activation(self, layer, x: str) -> str:
        """The layer's `activation` on x (Dense, Activation)."""
        name = getattr(layer.activation, "__name__", "")
        if name == "linear":
            return x
        if name not in _DENSE_ACTIVATIONS:
            raise ValueError(f"layer {layer.name!r}: activation {name!r} is not supported by the ONNX export")
        return self.g.node(_DENSE_ACTIVATIONS[name], [x], layer.name, **({"axis": -1} if name == "softmax" else {}))

    def recurrent(self, layer, x: str, lengths: str | None):
        """A recurrent layer (ours or Keras' SimpleRNN / GRU / LSTM) or a Bidirectional of two,
        on batch-major x -> one native node. Returns the layer's output, or its list of
        outputs with ``return_state`` / ``merge_mode=None``."""
        g = self.g
        if isinstance(layer, self.keras.layers.Bidirectional):
            directions = [layer.forward_layer, layer.backward_layer]
            merge = layer.merge_mode
        else:
            directions, merge = [layer], None
            if layer.go_backwards and layer.return_sequences:
                raise ValueError(f"layer {layer.name!r}: go_backwards with return_sequences outside "
                                 "Bidirectional is not supported by the ONNX export")
        first = directions[0]
        if getattr(first, "stateful", False) and not self.stateful_inputs:
            raise ValueError(f"layer {layer.name!r}: stateful layers are not supported by the ONNX export")
        sequences, with_states = first.return_sequences, first.return_state
        initial = self._state_inputs(first) if self.stateful_inputs else None
        y, states = add_recurrent(g, g.transpose(x, [1, 0, 2]), lengths, directions, layer.name, initial)
        if initial is not None:
            for name, state in zip(self.state_inputs[-len(states):], states):
                self.state_outputs.append((name[: -len("_in")], state))
        if sequences and len(directions) == 1:  # Y (T, 1, B, H) -> (B, T, H)
            out = g.reshape(g.transpose(y, [2, 0, 1, 3]), [0, 0, -1])
            if lengths is not None and not getattr(first, "zero_output_for_mask", False):
                out = self._carry_last_output(out, lengths)
        elif sequences:  # Y (T, 2, B, H)
            if merge == "concat":  # -> (B, T, dirs*H): forward then backward, as Bidirectional's concat
                out = g.reshape(g.transpose(y, [2, 0, 1, 3]), [0, 0, -1])
            else:
                parts = [g.transpose(part, [2, 0, 1, 3]) for part in self._split_directions(y, len(directions), 1)]
                out = self._merge([g.reshape(p, [0, 0, -1]) for p in parts], merge, layer.name)
        elif merge == "concat" or len(directions) == 1:  # Y_h (dirs, B, H) -> (B, dirs*H)
            out = g.reshape(g.transpose(states[0], [1, 0, 2]), [0, -1])
        else:
            out = self._merge([self._squeeze0(p) for p in self._split_directions(states[0], 2, 0)], merge,
                              layer.name)
        if not with_states:
            return out
        # return_state: h (and c) of each direction, as (B, H)
        finals = []
        for d in range(len(directions)):
            for state in states:
                finals.append(self._squeeze0(self._split_directions(state, len(directions), 0)[d]))
        return [*(out if isinstance(out, list) else [out]), *finals]

    def _carry_last_output(self, y: str, lengths: str) -> str:
        """Keras (``zero_output_for_mask=False``) repeats the last valid output at padded steps,
        where ONNX's node outputs zeros: take y[b, min(t, length_b - 1)]."""
        g = self.g
        positions, column = self._step_grid(y, lengths)
        last = g.node("Sub", [column, g.const("one_i", 1, np.int64)])
        index = g.node("Max", [g.node("Min", [positions, last]), g.const("zero_i", 0, np.int64)])  # (B, T)
        index = g.node("Expand", [g.node("Unsqueeze", [index, g.const("axis2", [2], np.int64)]), g.node("Shape", [y])])
        return g.node("GatherElements", [y, index], "carried", axis=1)

    def _split_directions(self, value: str, count: int, axis: int) -> list[str]:
        if count == 1:
            return [value]
        return self.g.node("Split", [value, self.g.const("halves", [1, 1], np.int64)], "directions", outputs=2,
                           axis=axis)

    def _squeeze0(self, value: str) -> str:
        return self.g.node("Squeeze", [value, self.g.const("axis0", [0], np.int64)])

    def _merge(self, parts: list[str], mode: str | None, name: str):
        g = self.g
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

    def _step_grid(self, x: str, lengths: str) -> tuple[str, str]:
        """(step positions (1, T), row lengths (B, 1)), both int64, for batch-major x."""
        g = self.g
        steps = g.node("Squeeze", [g.shape_of(x, 1, 2)], "steps")
        positions = g.node("Range", [g.const("zero_i", 0, np.int64), steps, g.const("one_i", 1, np.int64)],
                           "positions")
        row = g.node("Unsqueeze", [positions, g.const("axis0", [0], np.int64)])
        column = g.node("Unsqueeze", [g.node("Cast", [lengths], to=INT64), g.const("axis1", [1], np.int64)])
        return row, column

    def pooling(self, layer, x: str, lengths: str, mode: str | None = None) -> str:
        """SequencePooling (or a masked mean: `mode`) over the valid steps of x."""
        g = self.g
        mode = mode or layer.mode
        positions, column = self._step_grid(x, lengths)
        axis1 = g.const("axis1", [1], np.int64)
        if mode == "last":
            last = g.node("Sub", [column, g.const("one_i", 1, np.int64)])
            pick = g.node("Cast", [g.node("Equal", [positions, last])], to=onnx.TensorProto.FLOAT)
            picked = g.node("Mul", [x, g.node("Unsqueeze", [pick, g.const("axis2", [2], np.int64)])])
            return g.node("ReduceSum", [picked, axis1], layer.name, keepdims=0)
        valid3 = g.node("Unsqueeze", [g.node("Less", [positions, column]), g.const("axis2", [2], np.int64)])
        if mode == "mean":
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

    # -- layers from Keras itself ---------------------------------------------------
    def softmax(self, layer, x: str) -> str:
        axis = layer.axis if isinstance(layer.axis, int) else layer.axis[-1]
        return self.g.node("Softmax", [x], layer.name, axis=axis)

    def global_pooling(self, layer, x: str, lengths: str | None) -> str:
        """GlobalAveragePooling1D honours the mask (as Keras does); GlobalMaxPooling1D does not
        support masking in Keras 3, so it takes every step."""
        g = self.g
        axis = g.const("axis1", [1], np.int64)
        if isinstance(layer, self.keras.layers.GlobalAveragePooling1D) and lengths is not None:
            pooled = self.pooling(layer, x, lengths, mode="mean")
        elif isinstance(layer, self.keras.layers.GlobalAveragePooling1D):
            pooled = g.node("ReduceMean", [x, axis], layer.name, keepdims=0)
        else:
            pooled = g.node("ReduceMax", [x, axis], layer.name, keepdims=0)
        if getattr(layer, "keepdims", False):
            pooled = g.node("Unsqueeze", [pooled, axis])
        return pooled

    def masking(self, layer, x: str) -> str:
        """Masking: the mask (a step is kept when any feature differs from mask_value) becomes
        lengths; the values pass through (Keras also zeroes masked steps: done here too)."""
        g = self.g
        keep = g.node("Not", [g.node("Equal", [x, g.const("mask_value", layer.mask_value, np.float32)])])
        any_kept = g.node("ReduceMax", [g.node("Cast", [keep], to=FLOAT), g.const("axis2", [2], np.int64)],
                          keepdims=1)  # (B, T, 1): 1.0 where the step is kept
        self.mask_lengths[layer.name] = g.node("Cast", [g.node("ReduceSum", [g.node("Squeeze", [
            any_kept, g.const("axis2", [2], np.int64)]), g.const("axis1", [1], np.int64)], keepdims=0)],
            f"{layer.name}_lengths", to=onnx.TensorProto.INT32)
        return g.node("Mul", [x, any_kept], layer.name)

    def time_distributed(self, layer, x: str) -> str:
        inner = layer.layer
        handler = self._handler(inner)
        if handler not in (self.dense, self.activation, self.softmax, self.identity):
            raise ValueError(f"layer {layer.name!r}: TimeDistributed({type(inner).__name__}) is not supported "
                             "by the ONNX export (Dense, Activation, Softmax, Dropout are)")
        return handler(inner, x)  # these act on the last axis: the same on every step

    def identity(self, layer, x: str) -> str:
        return x

    # -- the walk -------------------------------------------------------------------
    def _handler(self, layer):
        for cls in type(layer).__mro__:
            if cls in self.handlers:
                return self.handlers[cls]
        supported = sorted({c.__name__ for c in self.handlers})
        raise ValueError(f"layer {layer.name!r} ({type(layer).__name__}) is not supported by the ONNX export; "
                         f"supported: {', '.join(supported)}")

    def _handlers(self) -> dict:
        keras, ks = self.keras, self.keras_seq
        layers = keras.layers
        return {
            layers.Embedding: self.embedding, layers.Dense: self.dense, layers.Activation: self.activation,
            layers.Softmax: self.softmax, layers.Dropout: self.identity, layers.SpatialDropout1D: self.identity,
            layers.GaussianNoise: self.identity, layers.GaussianDropout: self.identity, ks.CRF: self.identity,
            layers.Masking: self.masking, layers.TimeDistributed: self.time_distributed,
            layers.GlobalAveragePooling1D: self.global_pooling, layers.GlobalMaxPooling1D: self.global_pooling,
            layers.Concatenate: self.concatenate, layers.Add: self.add,
            ks.Recurrent: self.recurrent, layers.RNN: self.recurrent, layers.Bidirectional: self.recurrent,
            ks.SequencePooling: self.pooling, ks.CharacterWordEncoder: self.char_words,
        }

    def concatenate(self, layer, *args: str) -> str:
        return self.g.node("Concat", list(args), layer.name, axis=layer.axis)

    def add(self, layer, *args: str) -> str:
        out = args[0]
        for other in args[1:]:
            out = self.g.node("Add", [out, other], layer.name)
        return out

    def convert(self) -> GraphBuilder:
        g = self.g
        names: dict[int, str] = {}
        lengths_of: dict[int, str | None] = {}  # tensor -> the lengths of its mask (None: unmasked)
        self.handlers = self._handlers()
        for i, tensor in enumerate(self.model.inputs):
            integer = "int" in str(tensor.dtype)
            name = self.input_names[i]
            shape = ["batch", "time", *(["chars"] if integer and len(tensor.shape) == 3 else
                                        [int(d) if d else f"{name}_dim{k}" for k, d in enumerate(tensor.shape[2:])])]
            names[id(tensor)] = g.add_input(name, INT64 if integer else FLOAT, shape[: len(tensor.shape)])
            if integer and self.first_ids is None:
                self.first_ids = names[id(tensor)]
        for output in self.output_names:
            g._used.add(output)  # graph output names stay free for `add_output`
        for node in functional_nodes(self.model):
            layer = node.operation
            args = [names.get(id(t)) for t in node.input_tensors]
            if not isinstance(layer, self.keras.layers.Layer):
                # Keras ops between layers compute masks (ids != 0, ...); masks travel as lengths.
                for tensor in node.outputs:
                    names[id(tensor)] = None
                continue
            if args[0] is None:
                raise ValueError(f"layer {layer.name!r} reads a value computed by a raw Keras op; "
                                 "the ONNX export supports layers only")
            handler = self._handler(layer)
            lengths = lengths_of.get(id(node.input_tensors[0]))
            if lengths is None and None in args[1:] and self.first_ids is not None:
                lengths = self.default_lengths()  # an explicit mask from raw ops: ids != 0 (right padding)
            data = [a for a in args if a is not None]
            if handler in (self.recurrent, self.pooling, self.global_pooling):
                out = handler(layer, data[0], lengths)
            elif handler in (self.concatenate, self.add):
                out = handler(layer, *data)
            else:
                out = handler(layer, data[0])
            outs = out if isinstance(out, list) else [out]
            mask = self._mask_after(layer, handler, lengths, args)
            for tensor, value in zip(node.outputs, outs):
                names[id(tensor)] = value
                lengths_of[id(tensor)] = mask
        for output in self.output_names:
            g._used.discard(output)
        for tensor, name, axes in zip(self.model.outputs, self.output_names, self.output_axes):
            g.add_output(names[id(tensor)], name, FLOAT, axes)
        for name, state in self.state_outputs:
            squeezed = g.node("Squeeze", [state, g.const("axis0", [0], np.int64)])
            g.add_output(squeezed, name, FLOAT, ["batch", "units"])
        return g

    def _mask_after(self, layer, handler, lengths: str | None, args: list) -> str | None:
        """The mask (as lengths) of a layer's outputs, as Keras propagates it."""
        if handler == self.embedding:
            return self.lengths_of(args[0]) if layer.mask_zero else None
        if handler == self.masking:
            return self.mask_lengths[layer.name]
        if handler in (self.pooling, self.global_pooling, self.char_words):
            return None
        if handler == self.recurrent:
            sequences = getattr(layer, "return_sequences", None)
            if sequences is None:
                sequences = layer.forward_layer.return_sequences
            return lengths if sequences else None
        return lengths

    def default_lengths(self) -> str:
        if self._default_lengths is None:
            self._default_lengths = self.lengths_of(self.first_ids)
        return self._default_lengths


def model_to_onnx(model, output: str, output_axes: list[str], metadata: dict[str, str], *,
                  stateful_inputs: bool = False, doc: str = "keras-seq model") -> onnx.ModelProto:
    """The ONNX model of a keras_seq model; `onnx.checker` passes on it."""
    graph = _Converter(model, [output], [output_axes], stateful_inputs, ["ids", "chars"]).convert()
    onnx_model = graph.model(metadata, doc=doc)
    onnx.checker.check_model(onnx_model, full_check=True)
    return onnx_model
