"""The decoder of an attentional encoder-decoder (Luong et al., 2015), with or without input feeding.

At target step t, with the embedded previous target token x_t, the previous attentional
vector h~_{t-1} (zeros at t = 1), the encoder's outputs m_1..m_S (the memory) and their
padding mask, the decoder with input feeding computes

.. math::

    h_t = \\mathrm{cell}([x_t; \\tilde h_{t-1}], h_{t-1}), \\qquad
    (c_t, a_t) = \\mathrm{attention}(h_t, m), \\qquad
    \\tilde h_t = \\tanh(W_c [c_t; h_t])

h~_t is the step's output (a Dense layer maps it to target-token logits) and is fed to the
next step (input feeding). Without input feeding the cell reads x_t alone,
h_t = cell(x_t, h_{t-1}): the recurrence no longer waits for the attention, so under teacher
forcing the loop runs the bare cell and the attention and W_c cover all L steps in one
batched product after it. ``attention`` is `AdditiveAttention` (Bahdanau's score) or
`MultiplicativeAttention` (Luong's dot / general); without attention the decoder is the
plain encoder-decoder: h~_t = h_t and the encoder's final state is the only context.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops

from keras_seq import _keras_compat
from keras_seq._ops import matmul_features
from keras_seq.attention import AdditiveAttention, MultiplicativeAttention
from keras_seq.cells import ElmanCell, GRUCell, LSTMCell

__all__ = ["AttentionDecoder", "build_seq2seq", "attention_model", "Seq2SeqStepper"]

_CELLS = {"elman": ElmanCell, "gru": GRUCell, "lstm": LSTMCell}
_ATTENTION = ("luong", "luong_dot", "bahdanau", None)


@keras.saving.register_keras_serializable(package="keras_seq")
class AttentionDecoder(keras.layers.Layer):
    """Runs our Elman / GRU / LSTM cell as an attentional decoder, with or without input feeding.

    Args:
        units: H, the cell's units (and the attentional vector's size).
        cell: ``"lstm"``, ``"gru"`` or ``"elman"``.
        attention: ``"luong"`` (general score), ``"luong_dot"`` (dot score; the memory must
            have H features), ``"bahdanau"`` (additive score) or None (no attention).
        attention_units: A, the additive score's hidden size (default H).
        input_feeding: feed h~_{t-1} to the cell with x_t (Luong et al.'s input feeding;
            default). False: the cell reads x_t alone, and under teacher forcing the
            attention runs once over all steps after the loop; the step-by-step carry is
            then the cell's states alone (`initial_carry`).

    Call arguments: ``targets`` (B, L, E), the embedded target inputs (teacher forcing:
    <BOS> y_1 .. y_{L-1}); ``memory`` (B, S, M); ``initial_state``: list of (B, H), the
    cell's states (e.g. the encoder's final states through a bridge); ``memory_mask``
    (B, S); ``mask`` (B, L) for padded targets (their steps keep the state).

    Returns ``(outputs, weights, *final_states)``: outputs (B, L, H) (the attentional
    vectors h~), weights (B, L, S) (zeros without attention) and the cell's final states,
    each (B, H). One call covers every target step; the input projection x_t W of all
    steps is one matmul outside the loop, as in `keras_seq.Recurrent`.

    Shapes: B = batch size, L = target steps, S = source steps, E = target embedding
    size, M = memory features, H = units.

    Example (teacher forcing and one step at a time give the same outputs)::

        >>> import numpy as np, keras_seq
        >>> rng = np.random.default_rng(0)
        >>> decoder = keras_seq.AttentionDecoder(6, cell="gru", attention="bahdanau")
        >>> targets = rng.normal(size=(2, 3, 4)).astype("float32")
        >>> memory = rng.normal(size=(2, 5, 6)).astype("float32")
        >>> outputs, weights, state = decoder(targets, memory, initial_state=[np.zeros((2, 6), "float32")])
        >>> carry = decoder.initial_carry([np.zeros((2, 6), "float32")])
        >>> for t in range(3):
        ...     step_output, step_weights, carry = decoder.step(targets[:, t], carry, memory)
        >>> bool(np.allclose(step_output, outputs[:, -1], atol=1e-5)), tuple(weights.shape)
        (True, (2, 3, 5))
    """

    def __init__(
        self,
        units: int,
        cell: str = "lstm",
        attention: str | None = "luong",
        attention_units: int | None = None,
        input_feeding: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if cell not in _CELLS:
            raise ValueError(f"`cell` must be one of {sorted(_CELLS)}; received cell={cell!r}.")
        if attention not in _ATTENTION:
            raise ValueError(f"`attention` must be one of {_ATTENTION}; received attention={attention!r}.")
        self.units, self.cell_name, self.attention_name = int(units), cell, attention
        self.attention_units = attention_units
        self.input_feeding = bool(input_feeding)
        self.cell = _CELLS[cell](self.units, name="cell")
        if attention == "bahdanau":
            self.attention = AdditiveAttention(attention_units or self.units, name="attention")
        elif attention in ("luong", "luong_dot"):
            self.attention = MultiplicativeAttention("dot" if attention == "luong_dot" else "general", name="attention")
        else:
            self.attention = None
        self.supports_masking = True

    @property
    def feeds_input(self) -> bool:
        """Whether the cell reads h~_{t-1} beside x_t (its kernel then has E + H rows)."""
        return self.attention is not None and self.input_feeding

    @property
    def state_size(self) -> list[int]:
        return list(self.cell.state_size)

    def build(self, targets_shape, memory_shape, initial_state_shape=None) -> None:
        feed = self.units if self.feeds_input else 0
        self.embed_dim = int(targets_shape[-1])
        self.cell.build((None, self.embed_dim + feed))  # kernel rows: [x_t; h~_{t-1}]
        if self.attention is not None:
            self.attention.build((None, self.units), memory_shape)
            self.combine_kernel = self.add_weight(
                shape=(int(memory_shape[-1]) + self.units, self.units),
                initializer="glorot_uniform",
                name="combine_kernel",
            )
        self.built = True

    def compute_output_shape(self, targets_shape, memory_shape, initial_state_shape=None):
        batch, steps = targets_shape[0], targets_shape[1]
        return (
            (batch, steps, self.units),
            (batch, steps, memory_shape[1]),
            *[(batch, size) for size in self.state_size],
        )

    def compute_mask(self, targets, memory=None, initial_state=None, mask=None, memory_mask=None):
        target_mask = mask[0] if isinstance(mask, (list, tuple)) else mask
        return [target_mask, target_mask] + [None] * len(self.state_size)

    # -- one step (inference) --------------------------------------------------------
    def initial_carry(self, states) -> list:
        """The loop's carry before the first target: the cell's states (in its `state_dtype`:
        float32 under mixed precision) and, under input feeding, h~_0 = 0 (in the compute dtype)."""
        states = [ops.cast(x, self.cell.state_dtype) for x in states]
        if not self.feeds_input:
            return states
        return states + [ops.zeros((ops.shape(states[0])[0], self.units), dtype=self.compute_dtype)]

    def prepare_memory(self, memory):
        """What the steps reuse per source: the additive score's W_m m_s (or None)."""
        return None if self.attention is None else self.attention.project_memory(memory)

    def _step(self, projected_t, carry, memory, keys, memory_mask):
        """projected_t: x_t W_x + b, (B, G*H) -> (h~_t, weights (B, S), new carry)."""
        cell = self.cell
        if self.attention is None:
            output, states = cell.recurrent_step(projected_t, list(carry))
            return ops.cast(output, self.compute_dtype), None, list(states)
        states = list(carry)
        if self.input_feeding:
            attentional = states.pop()
            feed_kernel = ops.cast(cell.kernel[self.embed_dim :], attentional.dtype)
            projected_t = projected_t + ops.matmul(attentional, feed_kernel)
        h, states = cell.recurrent_step(projected_t, states)
        h = ops.cast(h, self.compute_dtype)  # attention and the combination run in the compute dtype
        attentional, weights = self._attend(h, memory, keys, memory_mask)
        return attentional, weights, list(states) + ([attentional] if self.input_feeding else [])

    def _attend(self, h, memory, keys, memory_mask):
        """h (B, H) or (B, L, H) -> (h~, attention weights (B, [L,] S))."""
        context, weights = self.attention.attend(h, memory, memory_mask, keys)
        attentional = ops.tanh(matmul_features(ops.concatenate([context, h], axis=-1), self.combine_kernel))
        return attentional, weights

    def step(self, target_t, carry, memory, memory_mask=None, keys=None):
        """One target step at inference: target_t (B, E) -> (h~_t (B, H), weights (B, S) or
        None, new carry). `keys`: `prepare_memory(memory)`, computed once per source."""
        if keys is None:
            keys = self.prepare_memory(memory)
        projected = self._project(target_t)
        return self._step(projected, carry, memory, keys, memory_mask)

    def _project(self, targets):
        cell = self.cell
        kernel = ops.cast(cell.kernel[: self.embed_dim], targets.dtype)
        projected = matmul_features(targets, kernel)
        bias = cell.input_bias() if cell.use_bias else None
        return projected if bias is None else projected + ops.cast(bias, targets.dtype)

    # -- all target steps (teacher forcing) ----------------------------------------
    def call(self, targets, memory, initial_state=None, memory_mask=None, mask=None):
        if isinstance(mask, (list, tuple)):
            if memory_mask is None and len(mask) > 1:
                memory_mask = mask[1]
            mask = mask[0]
        if initial_state is None:
            initial_state = self.cell.get_initial_state(ops.shape(targets)[0])
        if mask is not None:
            mask = ops.cast(mask, "bool")
        if self.attention is not None and not self.feeds_input:
            return self._call_hoisted(targets, memory, initial_state, memory_mask, mask)
        keys = self.prepare_memory(memory)
        source_steps = ops.shape(memory)[1]

        def step(projected_t, carry):
            output, weights, new_carry = self._step(projected_t, carry, memory, keys, memory_mask)
            if weights is None:
                weights = ops.zeros((ops.shape(output)[0], source_steps), output.dtype)
            return ops.concatenate([output, weights], axis=-1), new_carry

        outputs, final = self._loop(step, targets, self.initial_carry(initial_state), mask)
        states = [ops.cast(x, self.compute_dtype) for x in final[: len(self.state_size)]]
        return (outputs[..., : self.units], outputs[..., self.units :], *states)

    def _call_hoisted(self, targets, memory, initial_state, memory_mask, mask):
        """Teacher forcing without input feeding: the bare cell's loop, then the attention
        and the combination over all L steps at once."""
        cell = self.cell

        def step(projected_t, states):
            h, states = cell.recurrent_step(projected_t, list(states))
            return ops.cast(h, self.compute_dtype), list(states)

        h, final = self._loop(step, targets, self.initial_carry(initial_state), mask)
        attentional, weights = self._attend(h, memory, self.prepare_memory(memory), memory_mask)
        if mask is not None:  # padded target steps give zeros, as the loop with input feeding does
            valid = ops.expand_dims(mask, -1)
            attentional = ops.where(valid, attentional, ops.zeros_like(attentional))
            weights = ops.where(valid, weights, ops.zeros_like(weights))
        return (attentional, weights, *[ops.cast(x, self.compute_dtype) for x in final])

    def _loop(self, step, targets, carry, mask):
        """``step(projected_t, carry) -> (output_t, carry)`` over every target step:
        (outputs (B, L, ...), the final carry). Padded steps keep the carry and output zeros."""
        # Time-major with a static number of steps only: keras' rnn() caps a time-major loop of
        # unknown length at inputs.shape[1] (see keras_seq.recurrent).
        time_major = targets.shape[1] is not None
        projected = self._project(targets)
        if time_major:
            projected = ops.transpose(projected, (1, 0, 2))
            mask = None if mask is None else ops.transpose(mask, (1, 0))
        _, outputs, final = _keras_compat.rnn(
            step,
            projected,
            carry,
            mask=mask,
            input_length=targets.shape[1],
            time_major=time_major,
            zero_output_for_mask=True,
        )
        if time_major:
            outputs = ops.transpose(outputs, (1, 0, 2))
        return outputs, list(final)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "units": self.units,
            "cell": self.cell_name,
            "attention": self.attention_name,
            "attention_units": self.attention_units,
            "input_feeding": self.input_feeding,
        }


def build_seq2seq(
    source_vocab: int,
    target_vocab: int,
    *,
    cell: str = "lstm",
    units: int = 256,
    embed_dim: int = 128,
    encoder_depth: int = 1,
    bidirectional_encoder: bool = True,
    attention: str | None = "luong",
    input_feeding: bool = True,
    dropout: float = 0.0,
    name: str = "seq2seq",
) -> keras.Model:
    """(source ids (B, S), target input ids (B, L)) -> target-token logits (B, L, target_vocab).

    The encoder: an embedding (id 0 pads) and `encoder_depth` recurrent layers (each
    Bidirectional when `bidirectional_encoder`); its outputs are the memory. A bridge (a
    tanh Dense layer per state: both directions' final states, concatenated) gives the
    decoder its initial states; then an `AttentionDecoder` (teacher forcing: the target
    inputs are <BOS> y_1 .. y_{L-1}) and a Dense layer to logits. Padded target steps
    (id 0) carry the mask to the loss. ``attention="luong_dot"`` needs memory features of
    size `units` (a unidirectional encoder). `input_feeding=False`: the decoder's cell reads
    the target embedding alone (`AttentionDecoder`). `attention_model(model)` gives the weights.

    Example::

        >>> import numpy as np, keras_seq
        >>> model = keras_seq.build_seq2seq(20, 12, cell="gru", units=8, embed_dim=4)
        >>> tuple(model.predict([np.array([[3, 4, 5, 0]]), np.array([[1, 6, 7]])], verbose=0).shape)
        (1, 3, 12)
    """
    if cell not in _CELLS:
        raise ValueError(f"`cell` must be one of {sorted(_CELLS)}; received cell={cell!r}.")
    if isinstance(encoder_depth, bool) or not isinstance(encoder_depth, int) or encoder_depth < 1:
        raise ValueError(f"`encoder_depth` must be a positive integer; received encoder_depth={encoder_depth!r}.")
    from keras_seq.recurrent import GRU, LSTM, Elman

    layer_class = {"elman": Elman, "gru": GRU, "lstm": LSTM}[cell]
    source = keras.Input((None,), dtype="int32", name="source")
    target_in = keras.Input((None,), dtype="int32", name="target_in")
    x = keras.layers.Embedding(source_vocab, embed_dim, mask_zero=True, name="source_embedding")(source)
    for depth in range(encoder_depth):
        last = depth == encoder_depth - 1
        layer = layer_class(
            units, return_sequences=True, return_state=last, dropout=dropout, name=f"encoder_{depth + 1}"
        )
        if bidirectional_encoder:
            layer = keras.layers.Bidirectional(layer, name=f"encoder_{depth + 1}_bidirectional")
        x = layer(x)
    memory, *states = x
    count = len(_CELLS[cell](units).state_size)
    if bidirectional_encoder:
        states = [
            keras.layers.Concatenate(name=f"bridge_{k}_concat")([states[k], states[count + k]]) for k in range(count)
        ]
    states = [keras.layers.Dense(units, activation="tanh", name=f"bridge_{k}")(s) for k, s in enumerate(states)]
    targets = keras.layers.Embedding(target_vocab, embed_dim, mask_zero=True, name="target_embedding")(target_in)
    if dropout:
        targets = keras.layers.Dropout(dropout)(targets)
    decoder = AttentionDecoder(units, cell=cell, attention=attention, input_feeding=input_feeding, name="decoder")
    outputs, _, *_ = decoder(targets, memory, initial_state=states, memory_mask=ops.not_equal(source, 0))
    if dropout:
        outputs = keras.layers.Dropout(dropout)(outputs)
    logits = keras.layers.Dense(target_vocab, name="logits", dtype="float32")(outputs)  # float32 under mixed precision
    return keras.Model([source, target_in], logits, name=name)


def attention_model(model: keras.Model) -> keras.Model:
    """(source ids, target input ids) -> the decoder's attention weights (B, L, S), for plotting."""
    return keras.Model(model.inputs, model.get_layer("decoder").output[1])


def _compiled(fn):
    """`fn` traced once per input signature on the backends that trace (eager steps are slow)."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.function(fn, reduce_retracing=True)
    if backend == "jax":
        import jax

        return jax.jit(fn)
    return fn


class Seq2SeqStepper:
    """Inference for a `build_seq2seq` model: encode the sources once, then decode one target
    step at a time with `keras_seq.decoding.batch_beam_search` (or `batch_greedy`).

    ``encode(source_ids)`` -> (memory (B, S, M), memory mask (B, S), the decoder's initial
    carry: its states and the zero attentional vector); ``step_fn(memory, mask)`` -> the
    search's step function ``(ids (N,), carry) -> (log_probs (N, V), carry)`` over N rows of
    that memory. Padding (id 0) marks the sources' ends, as in training.

    Example (an untrained model: only the shapes mean something)::

        >>> import numpy as np, keras_seq
        >>> model = keras_seq.build_seq2seq(20, 12, cell="gru", units=8, embed_dim=4)
        >>> stepper = keras_seq.Seq2SeqStepper(model)
        >>> best = stepper.decode(np.array([[3, 4, 5, 0], [6, 7, 0, 0]]), bos_id=2, eos_id=3, beam_width=3)
        >>> best.tokens.shape[0], best.scores.shape
        (2, (2,))
    """

    def __init__(self, model: keras.Model) -> None:
        self.model = model
        self.decoder = model.get_layer("decoder")
        self.embedding = model.get_layer("target_embedding")
        self.logits = model.get_layer("logits")
        encoders = sorted(
            (layer for layer in model.layers if layer.name.startswith("encoder_")),
            key=lambda layer: int(layer.name.split("_")[1]),
        )
        bridges = [model.get_layer(f"bridge_{k}") for k in range(len(self.decoder.state_size))]
        self.encoder = keras.Model(
            model.inputs[0], [encoders[-1].output[0], *[b.output for b in bridges]], name="encoder"
        )
        self._encode = _compiled(lambda ids: self.encoder(ids, training=False))
        self._step = _compiled(self._step_logic)

    def _step_logic(self, ids, carry, memory, memory_mask, keys):
        output, _, carry = self.decoder.step(self.embedding(ids), list(carry), memory, memory_mask, keys)
        log_probs = ops.log_softmax(self.logits(output), axis=-1)
        return log_probs, carry

    def encode(self, source_ids) -> tuple:
        source_ids = np.asarray(source_ids).astype("int32")
        memory, *states = self._encode(source_ids)
        carry = self.decoder.initial_carry(list(states))
        return memory, source_ids != 0, [ops.convert_to_numpy(c) for c in carry]

    def step_fn(self, memory, memory_mask):
        """The search's step function over these memory rows (already repeated per beam)."""
        keys = self.decoder.prepare_memory(memory)
        mask = np.asarray(memory_mask)

        def step(ids, carry):
            log_probs, carry = self._step(np.asarray(ids, "int32"), list(carry), memory, mask, keys)
            return ops.convert_to_numpy(log_probs), [ops.convert_to_numpy(c) for c in carry]

        return step

    def decode(
        self,
        source_ids,
        *,
        bos_id: int,
        eos_id: int,
        beam_width: int = 1,
        alpha: float = 1.0,
        max_length_factor: float = 2.0,
        max_length_extra: int = 5,
        classes=None,
    ):
        """The best target per source (`keras_seq.decoding.BatchHypotheses`); `classes`: one
        class id per target token, ranking by class sequence (`keras_seq.decoding.merge_classes`)."""
        from keras_seq import decoding

        source_ids = np.asarray(source_ids)
        memory, mask, carry = self.encode(source_ids)
        max_lengths = decoding.max_target_lengths(mask.sum(axis=1), max_length_factor, max_length_extra)
        rows = np.repeat(np.arange(len(source_ids)), beam_width)
        step = self.step_fn(ops.take(memory, rows, axis=0), mask[rows])
        return decoding.batch_beam_search(
            step, carry, max_lengths, bos_id=bos_id, eos_id=eos_id, beam_width=beam_width, alpha=alpha, classes=classes
        )
