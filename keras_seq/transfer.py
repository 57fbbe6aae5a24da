"""Pretrain, then fine-tune: load a language model's embedding and recurrent encoder into a classifier
or tagger, layer by matching layer, and say what was loaded and what was not.

A language model (`build_language_model`) is an embedding, a stack of one-way recurrent layers and an
output layer. Its embedding goes to the target's embedding (rows matched by token when both
vocabularies are given), its i-th recurrent layer to the target's i-th recurrent level: the layer
itself when that level reads one way, its forward half (a forward LM) or its backward half (an LM
trained on reversed text) when it is `Bidirectional`. The output layer has no counterpart.

Example::

    >>> import keras_seq
    >>> lm = keras_seq.build_language_model(30, cell="gru", units=8, embed_dim=4, depth=1)
    >>> classifier = keras_seq.build_classifier(30, 2, cell="gru", units=8, embed_dim=4)
    >>> report = keras_seq.load_pretrained(classifier, lm)
    >>> report.loaded
    ['embedding <- embedding (30 of 30 rows)', 'bi_gru_0 (forward) <- gru_0']
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import keras

from keras_seq.charcontext import SEPARATOR, ContextualCharEmbedding
from keras_seq.charwords import CharacterWordEncoder
from keras_seq.contracts.run_dir import RunDirectory
from keras_seq.contracts.tokenizer import UNK
from keras_seq.contracts.vocab import Vocabulary
from keras_seq.finetuning import is_recurrent_layer

__all__ = ["TransferReport", "load_pretrained", "load_char_lm", "init_from", "run_direction", "DIRECTIONS"]

logger = logging.getLogger(__name__)

#: Which way a pretrained language model read its text.
DIRECTIONS = ("forward", "backward")


@dataclass
class TransferReport:
    """What `load_pretrained` / `init_from` copied (target <- source) and what it left as it was, why."""

    loaded: list[str] = field(default_factory=list)
    not_loaded: list[str] = field(default_factory=list)
    #: The directions of the character LMs loaded into contextual character layers.
    char_lms: list[str] = field(default_factory=list)

    def extend(self, other: TransferReport) -> None:
        self.loaded += other.loaded
        self.not_loaded += other.not_loaded
        self.char_lms += other.char_lms

    def as_dict(self) -> dict:
        return {"loaded": list(self.loaded), "not_loaded": list(self.not_loaded)}

    def __str__(self) -> str:
        lines = [f"loaded: {item}" for item in self.loaded] + [f"not loaded: {item}" for item in self.not_loaded]
        return "\n".join(lines)


def _top_layers(model: keras.Model) -> tuple[keras.layers.Embedding | None, list]:
    """The word embedding (not a character encoder's) and the recurrent levels, in order."""
    embedding, recurrent = None, []
    for layer in model.layers:
        if isinstance(layer, keras.layers.Embedding) and embedding is None and not recurrent:
            embedding = layer
        elif is_recurrent_layer(layer) and not isinstance(layer, CharacterWordEncoder):
            recurrent.append(layer)
    return embedding, recurrent


def _shapes(layer) -> list[tuple]:
    return [tuple(w.shape) for w in layer.weights]


def _copy_embedding(
    target, source, source_tokens: list[str] | None, target_tokens: list[str] | None, report: TransferReport
) -> None:
    into = f"{target.name} <- {source.name}"
    (matrix,) = source.get_weights()
    (current,) = target.get_weights()
    if matrix.shape[1] != current.shape[1]:
        report.not_loaded.append(
            f"{into}: the pretrained embedding is {matrix.shape[1]} wide, the model's {current.shape[1]} "
            "(set the model's embed_dim to the pretrained one)"
        )
        return
    if source_tokens is None or target_tokens is None:
        if matrix.shape[0] != current.shape[0]:
            report.not_loaded.append(
                f"{into}: vocabularies of {matrix.shape[0]} and {current.shape[0]} tokens and no tokens "
                "given to match rows by"
            )
            return
        target.set_weights([matrix])
        report.loaded.append(f"{into} ({current.shape[0]} of {current.shape[0]} rows)")
        return
    if len(source_tokens) != matrix.shape[0] or len(target_tokens) != current.shape[0]:
        raise ValueError(
            f"the token lists ({len(source_tokens)}, {len(target_tokens)}) do not match the embeddings' rows "
            f"({matrix.shape[0]}, {current.shape[0]})"
        )
    index = {token: i for i, token in enumerate(source_tokens)}
    rows = [(j, index[token]) for j, token in enumerate(target_tokens) if token in index]
    if rows:
        mine, theirs = map(list, zip(*rows))
        current[mine] = matrix[theirs]
    target.set_weights([current])
    report.loaded.append(f"{into} ({len(rows)} of {len(target_tokens)} rows, matched by token)")


def _copy_layer(target, source, what: str, report: TransferReport) -> None:
    mine, theirs = _shapes(target), _shapes(source)
    if type(target).__name__ == type(source).__name__ and mine[1:] == theirs[1:] and mine[0] != theirs[0]:
        report.not_loaded.append(
            f"{what} <- {source.name}: it reads {theirs[0][0]} features per step, this layer {mine[0][0]} "
            "(above the first level a bidirectional stack reads both directions' outputs)"
        )
        return
    if type(target).__name__ != type(source).__name__ or mine != theirs:
        report.not_loaded.append(
            f"{what} <- {source.name}: {type(source).__name__} {_shapes(source)} does not fit "
            f"{type(target).__name__} {_shapes(target)} (cell and units must match the pretrained model's)"
        )
        return
    target.set_weights(source.get_weights())
    report.loaded.append(f"{what} <- {source.name}")


def load_pretrained(
    model: keras.Model,
    source: keras.Model,
    *,
    direction: str = "forward",
    source_tokens: list[str] | None = None,
    target_tokens: list[str] | None = None,
    embedding: bool = True,
) -> TransferReport:
    """Copies `source`'s (a language model's) embedding and recurrent layers into `model`, matching
    layers as the module says; returns the report. `direction`: which way `source` read its text.
    ``embedding=False`` leaves the embedding (a second, backward LM after the forward one). Raises
    ValueError when nothing could be loaded."""
    if direction not in DIRECTIONS:
        raise ValueError(f"`direction` must be one of {DIRECTIONS}; received direction={direction!r}.")
    report = TransferReport()
    mine, my_levels = _top_layers(model)
    theirs, their_levels = _top_layers(source)
    if embedding and theirs is not None:
        if mine is None:
            report.not_loaded.append(f"{theirs.name}: the model has no word embedding")
        else:
            _copy_embedding(mine, theirs, source_tokens, target_tokens, report)
    for depth, pretrained in enumerate(their_levels):
        if isinstance(pretrained, keras.layers.Bidirectional):
            report.not_loaded.append(f"{pretrained.name}: a bidirectional source layer (pretrain one-way LMs)")
            continue
        if depth >= len(my_levels):
            report.not_loaded.append(f"{pretrained.name}: the model has only {len(my_levels)} recurrent levels")
            continue
        level = my_levels[depth]
        if isinstance(level, keras.layers.Bidirectional):
            half = level.forward_layer if direction == "forward" else level.backward_layer
            _copy_layer(half, pretrained, f"{level.name} ({direction})", report)
        elif direction == "forward" and not getattr(level, "go_backwards", False):
            _copy_layer(level, pretrained, level.name, report)
        else:
            report.not_loaded.append(
                f"{level.name} <- {pretrained.name}: a {direction} LM does not fit a one-way layer "
                "reading the other way"
            )
    for depth in range(len(their_levels), len(my_levels)):
        report.not_loaded.append(f"{my_levels[depth].name}: no pretrained layer at depth {depth}")
    if not report.loaded:
        raise ValueError("nothing of the pretrained model fits this model:\n" + str(report))
    for line in str(report).splitlines():
        logger.info("pretrained weights %s", line)
    return report


def load_char_lm(
    layer: ContextualCharEmbedding,
    source: keras.Model,
    *,
    direction: str = "forward",
    source_tokens: list[str] | None = None,
    target_tokens: list[str] | None = None,
) -> TransferReport:
    """Copies a one-layer character language model (`build_language_model` at character level) into the
    `direction` half of a `ContextualCharEmbedding`: its embedding (rows matched by character when both
    token lists are given, the layer's separator taking the LM's space, characters the LM never saw its
    ``<UNK>`` row) and its recurrent layer. Raises ValueError when the LM does not fit."""
    if direction not in DIRECTIONS:
        raise ValueError(f"`direction` must be one of {DIRECTIONS}; received direction={direction!r}.")
    report = TransferReport()
    theirs, levels = _top_layers(source)
    if theirs is None or len(levels) != 1 or isinstance(levels[0], keras.layers.Bidirectional):
        raise ValueError(
            f"a contextual character layer takes a one-layer, one-way character language model; "
            f"{source.name!r} has {len(levels)} recurrent layers"
        )
    embedding = layer.forward_embedding if direction == "forward" else layer.backward_embedding
    lm = layer.forward_lm if direction == "forward" else layer.backward_lm
    what = f"{layer.name} ({direction})"
    if target_tokens is not None:
        target_tokens = [*target_tokens, SEPARATOR]
        if source_tokens is not None and SEPARATOR not in source_tokens:
            raise ValueError("the character language model's vocabulary has no space, the words' separator")
    (matrix,) = theirs.get_weights()
    (current,) = embedding.get_weights()
    if matrix.shape[1] != current.shape[1]:
        raise ValueError(
            f"{what}: the character LM's embedding is {matrix.shape[1]} wide, the layer's {current.shape[1]} "
            "(set model.char_lm_embed_dim to the LM's embed_dim)"
        )
    recurrent, mine = levels[0], _shapes(lm)
    if type(recurrent).__name__ != type(lm).__name__ or _shapes(recurrent) != mine:  # checked before any copy
        raise ValueError(
            f"{what} <- {recurrent.name}: {type(recurrent).__name__} {_shapes(recurrent)} does not fit "
            f"{type(lm).__name__} {mine} (set model.char_lm_cell and model.char_lm_units to the LM's cell and units)"
        )
    if source_tokens is not None and target_tokens is not None and UNK in source_tokens:
        # Characters the LM never saw read as its <UNK>: a frozen LM must not see untrained rows.
        current[:] = matrix[source_tokens.index(UNK)]
        embedding.set_weights([current])
    _copy_embedding(embedding, theirs, source_tokens, target_tokens, report)
    if report.not_loaded:
        raise ValueError(f"{what}: " + report.not_loaded[-1])
    report.loaded[-1] = f"{what} " + report.loaded[-1]
    lm.set_weights(recurrent.get_weights())
    report.loaded.append(f"{what} <- {recurrent.name}")
    report.char_lms.append(direction)
    for line in str(report).splitlines():
        logger.info("pretrained weights %s", line)
    return report


def run_direction(run: RunDirectory) -> str:
    """The direction a language-model run was trained in (its ``model.direction``), checked."""
    direction = run.config().get("model", {}).get("direction", "forward")
    if direction not in DIRECTIONS:
        raise ValueError(f"{run.config_file}: model.direction must be one of {DIRECTIONS}; received {direction!r}")
    return direction


def init_from(
    model: keras.Model,
    runs: str | Path | list[str | Path],
    *,
    tokens: list[str] | None = None,
    char_tokens: list[str] | None = None,
) -> TransferReport:
    """Loads pretrained language models from run directories (`keras-seq train` of task ``lm``) into
    `model`: each run's direction comes from its config (``model.direction``). A word-level run loads
    the embedding (the first such run only) and the recurrent levels (`load_pretrained`); a
    character-level run loads its half of the model's `ContextualCharEmbedding` when it has one
    (`load_char_lm`). With `tokens` (the model's vocabulary, one token per embedding row) and
    `char_tokens` (its character vocabulary) embedding rows are matched by token through each run's
    vocabulary file; without, the vocabularies must be the same size (the same file)."""
    runs = [runs] if isinstance(runs, (str, Path)) else list(runs)
    if not runs:
        raise ValueError("init_from needs at least one run directory")
    contextual = [layer for layer in model.layers if isinstance(layer, ContextualCharEmbedding)]
    report, word_runs = TransferReport(), 0
    for path in runs:
        run = RunDirectory(path).check()
        spec = run.tokenizer()
        vocab = Vocabulary.load(run.path / spec.vocab_file, level=spec.level)
        source = keras.saving.load_model(run.model, compile=False)
        if spec.level == "char" and contextual:
            matched = char_tokens is not None
            one = load_char_lm(
                contextual[0],
                source,
                direction=run_direction(run),
                source_tokens=vocab.tokens if matched else None,
                target_tokens=char_tokens,
            )
        else:
            one = load_pretrained(
                model,
                source,
                direction=run_direction(run),
                source_tokens=vocab.tokens if tokens is not None else None,
                target_tokens=tokens,
                embedding=word_runs == 0,
            )
            word_runs += 1
        report.extend(one)
    return report
