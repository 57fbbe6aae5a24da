"""Task models built from the layers: classifier, tagger (softmax or CRF) and
language model, plus `LanguageModelStepper` for token-by-token generation.

Inputs are right-padded int ids with 0 as padding (the pipelines' contract);
the classifier and tagger mask padding through ``Embedding(mask_zero=True)``.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from keras_seq.charcontext import ContextualCharEmbedding
from keras_seq.charwords import CELLS, CharacterWordEncoder
from keras_seq.crf import CRF, CRFLoss
from keras_seq.losses import LabelSmoothedCrossentropy
from keras_seq.pooling import SequencePooling
from keras_seq.recurrent import Recurrent

POOLINGS = ("last", "mean", "max", "concat", "final")

__all__ = [
    "CELLS",
    "build_classifier",
    "build_tagger",
    "build_language_model",
    "unigram_log_probs",
    "LanguageModelStepper",
    "tagger_loss",
]


def _cell(name: str):
    if name not in CELLS:
        raise ValueError(f"`cell` must be one of {sorted(CELLS)}; received cell={name!r}.")
    return CELLS[name]


def _embedding(vocab_size: int, embed_dim: int, mask_zero: bool, matrix: np.ndarray | None, trainable: bool):
    if matrix is not None:
        matrix = np.asarray(matrix)
        if matrix.shape != (vocab_size, embed_dim):
            raise ValueError(f"`embedding_matrix` must have shape {(vocab_size, embed_dim)}; received {matrix.shape}.")
        init = keras.initializers.Constant(matrix)
    else:
        init = "uniform"
    return keras.layers.Embedding(
        vocab_size, embed_dim, mask_zero=mask_zero, embeddings_initializer=init, trainable=trainable, name="embedding"
    )


def _stack(
    x,
    cell: str,
    units: int,
    depth: int,
    bidirectional: bool,
    dropout: float,
    recurrent_dropout: float,
    last_returns_sequences: bool = True,
):
    if depth < 1:
        raise ValueError(f"`depth` must be >= 1; received depth={depth!r}.")
    layer_cls = _cell(cell)
    for i in range(depth):
        sequences = last_returns_sequences or i < depth - 1
        layer = layer_cls(
            units, return_sequences=sequences, dropout=dropout, recurrent_dropout=recurrent_dropout, name=f"{cell}_{i}"
        )
        x = keras.layers.Bidirectional(layer, name=f"bi_{cell}_{i}")(x) if bidirectional else layer(x)
    return x


def build_classifier(
    vocab_size: int,
    num_classes: int,
    *,
    cell: str = "lstm",
    embed_dim: int = 128,
    units: int = 128,
    depth: int = 1,
    bidirectional: bool = True,
    dropout: float = 0.0,
    recurrent_dropout: float = 0.0,
    pooling: str = "last",
    embedding_matrix: Any = None,
    trainable_embeddings: bool = True,
    name: str = "classifier",
) -> keras.Model:
    """ids (B, T) -> class probabilities (B, num_classes).

    ``pooling``: ``last`` / ``mean`` / ``max`` over the valid steps of the top
    layer's outputs, ``concat`` (all three side by side, ULMFiT), or ``final``: the top layer's final state (both
    directions' final states, concatenated, when bidirectional).

    Example::

        >>> import numpy as np, keras_seq
        >>> model = keras_seq.build_classifier(100, 3, cell="gru", units=8, embed_dim=8)
        >>> tuple(model.predict(np.array([[5, 6, 7, 0]]), verbose=0).shape)
        (1, 3)
    """
    if pooling not in POOLINGS:
        raise ValueError(f"`pooling` must be one of {POOLINGS}; received pooling={pooling!r}.")
    inputs = keras.Input((None,), dtype="int32", name="ids")
    x = _embedding(vocab_size, embed_dim, True, embedding_matrix, trainable_embeddings)(inputs)
    if dropout:
        x = keras.layers.Dropout(dropout)(x)
    x = _stack(x, cell, units, depth, bidirectional, dropout, recurrent_dropout, pooling != "final")
    if pooling != "final":
        x = SequencePooling(pooling, name="pooling")(x)
    if dropout:
        x = keras.layers.Dropout(dropout)(x)
    # float32 outputs (and loss) under mixed precision too: the last layer of every builder
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="probabilities", dtype="float32")(x)
    return keras.Model(inputs, outputs, name=name)


def build_tagger(
    vocab_size: int,
    num_tags: int,
    *,
    cell: str = "lstm",
    embed_dim: int = 100,
    units: int = 128,
    depth: int = 2,
    dropout: float = 0.0,
    recurrent_dropout: float = 0.0,
    crf: bool = False,
    embedding_matrix: Any = None,
    trainable_embeddings: bool = True,
    char_vocab_size: int | None = None,
    char_embed_dim: int = 32,
    char_units: int = 32,
    char_lm_units: int = 0,
    char_lm_embed_dim: int = 32,
    char_lm_cell: str = "lstm",
    name: str = "tagger",
) -> keras.Model:
    """ids (B, T) -> per-token tag probabilities (B, T, num_tags), or CRF
    emissions when ``crf=True`` (decode with the CRF layer's Viterbi).

    With ``char_vocab_size`` the model takes ``(ids, chars)``, chars (B, T, C)
    the character ids of each word, and concatenates a character-level
    encoding of every word to its embedding; ``char_lm_units`` > 0 also
    concatenates each word's states in a forward and a backward character
    language model run over the sentence (`ContextualCharEmbedding`, layer
    ``char_context``; pretrain them and load with `init_from`).

    Example::

        >>> import numpy as np, keras_seq
        >>> tagger = keras_seq.build_tagger(100, 6, crf=True, units=8, embed_dim=8)
        >>> tagger.compile("adam", loss=keras_seq.tagger_loss(tagger))
        >>> ids = np.array([[5, 6, 7, 0]])
        >>> tags, _ = tagger.get_layer("crf").decode(tagger.predict(ids, verbose=0), ids != 0)
        >>> tuple(tags.shape)
        (1, 4)
    """
    inputs = keras.Input((None,), dtype="int32", name="ids")
    x = _embedding(vocab_size, embed_dim, True, embedding_matrix, trainable_embeddings)(inputs)
    if char_vocab_size:
        chars = keras.Input((None, None), dtype="int32", name="chars")
        features = [
            x,
            CharacterWordEncoder(char_vocab_size, char_embed_dim, char_units, cell, name="char_words")(chars),
        ]
        if char_lm_units:
            context = ContextualCharEmbedding(
                char_vocab_size, char_lm_embed_dim, char_lm_units, char_lm_cell, name="char_context"
            )
            features.append(context(chars))
        x = keras.layers.Concatenate(name="word_features")(features)
        inputs = [inputs, chars]
    if dropout:
        x = keras.layers.Dropout(dropout)(x)
    x = _stack(x, cell, units, depth, True, dropout, recurrent_dropout)
    if dropout:
        x = keras.layers.Dropout(dropout)(x)
    if crf:
        emissions = keras.layers.Dense(num_tags, name="emissions", dtype="float32")(x)
        outputs = CRF(num_tags, name="crf", dtype="float32")(emissions)  # log-space sums stay float32
    else:
        outputs = keras.layers.Dense(num_tags, activation="softmax", name="tag_probabilities", dtype="float32")(x)
    return keras.Model(inputs, outputs, name=name)


def tagger_loss(model: keras.Model, label_smoothing: float = 0.0):
    """The CRF's NLL for a CRF tagger, masked cross-entropy otherwise (label-smoothed when
    `label_smoothing` > 0: `LabelSmoothedCrossentropy`; a CRF's sequence NLL has no such form).

    Example: ``tagger.compile("adam", loss=keras_seq.tagger_loss(tagger))``
    (see `build_tagger`).
    """
    crfs = [layer for layer in model.layers if isinstance(layer, CRF)]
    if crfs and label_smoothing:
        raise ValueError(
            "label smoothing (train.label_smoothing) applies to softmax outputs, not to a CRF's "
            "sequence likelihood; set it to 0 or model.crf = false"
        )
    if crfs:
        return CRFLoss(crfs[0])
    if label_smoothing:
        return LabelSmoothedCrossentropy(label_smoothing)
    return keras.losses.SparseCategoricalCrossentropy()


def build_language_model(
    vocab_size: int,
    *,
    cell: str = "lstm",
    embed_dim: int = 64,
    units: int = 256,
    depth: int = 2,
    dropout: float = 0.0,
    recurrent_dropout: float = 0.0,
    batch_size: int | None = None,
    stateful: bool = False,
    output_bias: Any = None,
    name: str = "language_model",
) -> keras.Model:
    """ids (B, T) -> next-token logits (B, T, vocab_size), teacher-forced.

    ``stateful=True`` (with a fixed ``batch_size``) carries the states from
    one window to the next: truncated BPTT over `pipelines.batching.lm_tracks`.

    ``output_bias``: the output layer's starting bias, (vocab_size,); give
    `unigram_log_probs` of the training ids. From a zero bias, the easiest way
    down the loss is to learn the unigram through the recurrent layer's bias,
    which saturates its state into a constant: a word-level GRU or LSTM can
    then sit at the unigram's loss for a whole epoch.

    Example::

        >>> import numpy as np, keras_seq
        >>> lm = keras_seq.build_language_model(50, units=16, embed_dim=8)
        >>> tuple(lm.predict(np.array([[3, 4, 5]]), verbose=0).shape)
        (1, 3, 50)
    """
    if stateful and batch_size is None:
        raise ValueError("`stateful=True` needs a fixed `batch_size`.")
    inputs = keras.Input(batch_shape=(batch_size, None), dtype="int32", name="ids")
    x = keras.layers.Embedding(vocab_size, embed_dim, name="embedding")(inputs)
    layer_cls = _cell(cell)
    for i in range(depth):
        x = layer_cls(
            units,
            return_sequences=True,
            stateful=stateful,
            dropout=dropout,
            recurrent_dropout=recurrent_dropout,
            name=f"{cell}_{i}",
        )(x)
        if dropout:
            x = keras.layers.Dropout(dropout)(x)
    if output_bias is not None:
        output_bias = np.asarray(output_bias, "float32")
        if output_bias.shape != (vocab_size,):
            raise ValueError(f"`output_bias` must have shape {(vocab_size,)}; received {output_bias.shape}.")
    bias = "zeros" if output_bias is None else keras.initializers.Constant(output_bias)
    outputs = keras.layers.Dense(vocab_size, name="logits", dtype="float32", bias_initializer=bias)(x)
    return keras.Model(inputs, outputs, name=name)


def unigram_log_probs(ids: Any, vocab_size: int, smoothing: float = 1.0) -> np.ndarray:
    """Log-probabilities (vocab_size,) of each id in `ids` (add-`smoothing` counts): a language model's
    starting output bias (`build_language_model(output_bias=...)`).

    >>> import keras_seq
    >>> [round(float(p), 3) for p in keras_seq.unigram_log_probs([2, 2, 3], 4)]
    [-1.946, -1.946, -0.847, -1.253]
    """
    counts = np.bincount(np.asarray(ids, "int64").ravel(), minlength=vocab_size)[:vocab_size] + smoothing
    return np.log(counts / counts.sum()).astype("float32")


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


class LanguageModelStepper:
    """Runs a trained language model (Embedding -> recurrent layers -> Dense)
    a few tokens at a time with explicit states, for generation.

    The recurrent layers are rebuilt with ``return_state=True`` (not stateful,
    no dropout) and given the trained weights; embedding and head are shared.
    ``masked=True`` treats id 0 as right padding (rows of a batch may differ
    in length: the states returned are those after each row's last token).

    Example (greedy continuation; see `keras_seq.decoding`)::

        >>> import numpy as np, keras_seq
        >>> stepper = keras_seq.LanguageModelStepper(keras_seq.build_language_model(50, units=16, embed_dim=8))
        >>> log_probs, states = stepper.run(np.array([[3, 4, 5]]), stepper.initial_states(1))
        >>> keras_seq.decoding.greedy(stepper.step, log_probs, states, 4).shape
        (1, 4)
    """

    def __init__(self, model: keras.Model, masked: bool = False) -> None:
        embedding = [l for l in model.layers if isinstance(l, keras.layers.Embedding)]
        recurrent = [l for l in model.layers if isinstance(l, Recurrent)]
        heads = [l for l in model.layers if isinstance(l, keras.layers.Dense)]
        if len(embedding) != 1 or not recurrent or not heads:
            raise ValueError("LanguageModelStepper needs an Embedding -> recurrent layers -> Dense model")
        ids = keras.Input((None,), dtype="int32")
        x = embedding[0](ids)
        mask = keras.ops.not_equal(ids, 0) if masked else None
        state_inputs, state_outputs, clones = [], [], []
        for layer in recurrent:
            config = {
                **layer.get_config(),
                "return_state": True,
                "stateful": False,
                "dropout": 0.0,
                "recurrent_dropout": 0.0,
                "return_sequences": True,
                "name": layer.name + "_step",
            }
            clone = type(layer).from_config(config)
            inputs = [keras.Input((size,)) for size in layer.state_size]
            x, *states = clone(x, initial_state=inputs, mask=mask)
            state_inputs += inputs
            state_outputs += states
            clones.append((clone, layer))
        logits = heads[-1](x)
        for clone, layer in clones:
            clone.set_weights(layer.get_weights())
        self.state_sizes = [int(s.shape[-1]) for s in state_inputs]
        self.model = keras.Model([ids, *state_inputs], [logits, *state_outputs])

    def initial_states(self, batch_size: int) -> list[np.ndarray]:
        return [np.zeros((batch_size, size), "float32") for size in self.state_sizes]

    def run(self, ids: np.ndarray, states: list) -> tuple[np.ndarray, list]:
        """ids (B, T) -> log-probabilities after the last step (B, V), new states."""
        ids = np.asarray(ids, dtype="int32")
        if ids.ndim != 2 or ids.shape[1] == 0:
            raise ValueError(f"`ids` must be (batch, time) with time >= 1; received shape {ids.shape}")
        outputs = self.model([ids, *[np.asarray(s, "float32") for s in states]], training=False)
        outputs = [keras.ops.convert_to_numpy(o) for o in outputs]  # torch tensors refuse np.asarray
        return _log_softmax(outputs[0][:, -1].astype("float64")), outputs[1:]

    def step(self, ids: np.ndarray, states: list) -> tuple[np.ndarray, list]:
        """One token per row: ids (B,) -> (log_probs (B, V), new states)."""
        return self.run(np.asarray(ids).reshape(-1, 1), states)
