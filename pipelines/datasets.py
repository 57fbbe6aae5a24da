"""Corpus -> vocabulary files -> tf.data datasets of ids, per task.

`prepare_text_dir` writes the tokenizer contract (``tokenizer.json`` + vocab
file) from the training split; `encoded_dataset` streams a split through the
one tokenizer (vectorised, in batches) and `batched` adds shuffling, length
bucketing and prefetching.
"""

from __future__ import annotations

import collections
import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf

from keras_seq.pipelines.batching import (
    AUTOTUNE,
    bucket_batch_sizes,
    bucket_by_length,
    bucketed_batch_count,
    fixed_length_batches,
    length_boundaries,
    sorted_batches,
)
from keras_seq.pipelines.readers import Corpus
from keras_seq.pipelines.tokenize import UNK_ID, TokenizerSpec, word_keys
from keras_seq.pipelines.vocab import TextEncoder, Vocabulary

ENCODE_BATCH = 512  # examples tokenized together (vectorised)


def raw_dataset(corpus: Corpus, split: str) -> tf.data.Dataset:
    """The split's examples as a tf.data stream of strings (labels as strings)."""
    return tf.data.Dataset.from_generator(
        lambda: corpus.examples(split), output_signature=corpus.pipeline.example_signature()
    )


def count_split_tokens(corpus: Corpus, split: str, spec: TokenizerSpec) -> collections.Counter:
    """Counts of the split's tokens, as written (before rule 7's keys)."""
    counts: collections.Counter = collections.Counter()
    for batch in corpus.pipeline.token_batches(raw_dataset(corpus, split), spec):
        counts.update(t.decode("utf-8") for t in batch.flat_values.numpy())
    return counts


def key_counts(counts: collections.Counter, spec: TokenizerSpec) -> collections.Counter:
    """Token counts -> vocabulary-key counts (rule 7; the same counts when keys are the tokens)."""
    if not spec.has_word_keys:
        return counts
    tokens = list(counts)
    keys = word_keys(tf.constant(tokens, tf.string), spec).numpy() if tokens else []
    out: collections.Counter = collections.Counter()
    for token, key in zip(tokens, keys):
        out[key.decode("utf-8")] += counts[token]
    return out


def prepare_text_dir(
    corpus: Corpus,
    directory: str | Path,
    spec: TokenizerSpec,
    vocab_size: int | None = 20000,
    min_count: int = 1,
    counts: collections.Counter | None = None,
) -> TextEncoder:
    """Builds the vocabulary from the training split only and writes the
    tokenizer contract into `directory`. Returns the encoder reading it.
    `counts`: the training split's `count_split_tokens`, when the caller has them."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    counts = count_split_tokens(corpus, "train", spec) if counts is None else counts
    if not counts:
        raise ValueError(f"{corpus.source}: the training split holds no tokens")
    vocab = Vocabulary.build(key_counts(counts, spec), max_size=vocab_size, min_count=min_count, level=spec.level)
    vocab.save(directory / spec.vocab_file)
    if spec.char_vocab_file:  # characters of the training words (rule 6), all of them
        char_counts: collections.Counter = collections.Counter()
        for word, count in counts.items():
            for char in word[: spec.max_word_len]:
                char_counts[char] += count
        Vocabulary.build(char_counts, level="char").save(directory / spec.char_vocab_file)
    spec.save(directory)
    return TextEncoder(directory)


def build_label_vocab(corpus: Corpus, directory: str | Path, file_name: str | None = None) -> Vocabulary:
    """The task's label vocabulary from the training split, written to its label file."""
    counts: collections.Counter = collections.Counter()
    for example in corpus.examples("train"):
        counts.update(corpus.pipeline.label_items(example))
    vocab = corpus.pipeline.label_vocabulary(counts)
    vocab.save(Path(directory) / (file_name or corpus.pipeline.task.label_file))
    return vocab


@dataclass
class LabelLookup:
    """Label strings -> ids in TF (unknown tag -> <UNK>; unknown class -> -1)."""

    vocab: Vocabulary

    def __post_init__(self) -> None:
        keys = tf.constant(self.vocab.tokens)
        values = tf.range(len(self.vocab.tokens), dtype=tf.int64)
        default = 1 if self.vocab.reserved else -1
        self.table = tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(keys, values), default)

    def __call__(self, labels):
        return self.table.lookup(labels)


def unbatch_ragged(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """Batches of ragged rows -> one dense 1-D tensor per row (padded_batch and
    bucketing need plain tensors, which unbatching a RaggedTensor does not give)."""
    spec = dataset.element_spec
    single = not isinstance(spec, tuple)
    ragged = [isinstance(s, tf.RaggedTensorSpec) for s in ((spec,) if single else spec)]

    def to_dense(*parts):  # ragged part -> (padded rows, row lengths)
        flat = []
        for part, is_ragged in zip(parts, ragged):
            flat.extend([part.to_tensor(), part.row_lengths()] if is_ragged else [part])
        return tuple(flat)

    def trim(*flat):  # back to one tensor per part, padding removed
        out, i = [], 0
        for is_ragged in ragged:
            out.append(flat[i][: flat[i + 1]] if is_ragged else flat[i])
            i += 2 if is_ragged else 1
        return out[0] if single else tuple(out)

    return dataset.map(to_dense).unbatch().map(trim)


def encoded_dataset(
    corpus: Corpus, split: str, encoder: TextEncoder, labels: LabelLookup | None = None
) -> tf.data.Dataset:
    """Unbatched elements: classify -> (ids [T], label id); tag -> (ids [T], tag ids [T]),
    or ((ids [T], char ids [T, C]), tag ids [T]) when the tokenizer has characters; lm -> ids [T]."""
    return corpus.pipeline.encode(raw_dataset(corpus, split), encoder, labels)


def first_ids(element):
    """The token ids of an element: ids, (ids, target) or ((ids, chars), target)."""
    while isinstance(element, tuple):
        element = element[0]
    return element


def split_lengths(dataset: tf.data.Dataset) -> np.ndarray:
    """Sequence length of every element."""
    return np.fromiter((int(first_ids(e).shape[0]) for e in dataset), dtype=np.int64)


def word_dropout(
    dataset: tf.data.Dataset,
    rate: float,
    seed: int,
    singletons_from: int | None = None,
    singleton_rate: float = 0.0,
    epoch=0,
) -> tf.data.Dataset:
    """Training only: replaces each word id by <UNK> with probability `rate`, so
    the model learns to tag words it has never seen from their context. Ids from
    `singletons_from` on (words seen once in training: the vocabulary's tail) are
    replaced with probability `singleton_rate` instead (Lample et al., 2016: 0.5).

    The draws are stateless, keyed by (seed, epoch, batch index): a resumed run
    drops the same words as an uninterrupted one."""
    if not rate and not (singleton_rate and singletons_from is not None):
        return dataset
    epoch = tf.cast(epoch, tf.int64)

    def drop(index, batch):
        inputs, targets = batch
        ids = inputs[0] if isinstance(inputs, tuple) else inputs
        threshold = tf.fill(tf.shape(ids), tf.constant(rate, tf.float32))
        if singletons_from is not None and singleton_rate:
            threshold = tf.where(ids >= singletons_from, max(rate, singleton_rate), threshold)
        key = tf.stack([tf.constant(seed, tf.int64), epoch * (1 << 32) + index])
        hit = (tf.random.stateless_uniform(tf.shape(ids), seed=key) < threshold) & (ids > UNK_ID)
        ids = tf.where(hit, tf.constant(UNK_ID, ids.dtype), ids)
        return ((ids, *inputs[1:]) if isinstance(inputs, tuple) else ids), targets

    return dataset.enumerate().map(drop, num_parallel_calls=AUTOTUNE)


def _batches(
    dataset: tf.data.Dataset,
    lengths: np.ndarray,
    *,
    tokens_per_batch: int,
    max_batch: int,
    buckets: int,
    bucketing: bool = True,
    fixed_length: int | None = None,
) -> tuple[tf.data.Dataset, int]:
    """(padded batches, their exact number)."""
    if bucketing:
        boundaries, sizes = _bucket_plan(lengths, tokens_per_batch, max_batch, buckets)
        return bucket_by_length(dataset, boundaries, sizes), bucketed_batch_count(lengths, boundaries, sizes)
    return (fixed_length_batches(dataset, max_batch, fixed_length or int(lengths.max())), -(-len(lengths) // max_batch))


def _bucket_plan(lengths: np.ndarray, tokens_per_batch: int, max_batch: int, buckets: int) -> tuple[list, list]:
    """(bucket boundaries, batch size per bucket) for these example lengths."""
    boundaries = length_boundaries(lengths, buckets)
    return boundaries, bucket_batch_sizes(boundaries, tokens_per_batch, max_batch, int(lengths.max()))


class ExampleTable:
    """A split's encoded examples in memory, one ragged tensor (or vector) per part of the element,
    so that any batch of them can be gathered and padded in the graph (`batches`)."""

    def __init__(self, dataset: tf.data.Dataset) -> None:
        spec = dataset.element_spec
        leaves_spec = tf.nest.flatten(spec)
        columns: list[list] = [[] for _ in leaves_spec]
        for element in dataset:
            for column, value in zip(columns, tf.nest.flatten(element)):
                column.append(value.numpy())
        self.structure = spec
        self.parts = [self._stack(column, s) for column, s in zip(columns, leaves_spec)]
        ids = self.parts[0]  # the first leaf: the token ids (`first_ids`)
        self.lengths = ids.row_lengths().numpy()

    @staticmethod
    def _stack(column: list, spec: tf.TensorSpec):
        if spec.shape.rank == 0:
            return tf.constant(np.asarray(column, dtype=spec.dtype.as_numpy_dtype))
        dtype = spec.dtype.as_numpy_dtype
        flat = np.concatenate([np.reshape(v, (-1,)) for v in column]) if column else np.zeros((0,), dtype)
        if spec.shape.rank == 1:
            return tf.RaggedTensor.from_row_lengths(flat, np.asarray([len(v) for v in column], np.int64))
        # (T, C) per example (a tagger's characters): rows of rows
        return tf.RaggedTensor.from_nested_row_lengths(
            flat,
            [
                np.asarray([v.shape[0] for v in column], np.int64),
                np.asarray([v.shape[1] for v in column for _ in range(v.shape[0])], np.int64),
            ],
        )

    def batches(self, plan: list[np.ndarray]) -> tf.data.Dataset:
        """One padded batch (0 on the right) per index array of `plan`, in that order."""
        indices = tf.RaggedTensor.from_row_lengths(
            np.concatenate(plan).astype(np.int64) if plan else np.zeros((0,), np.int64),
            np.asarray([len(b) for b in plan], np.int64),
        )
        parts = self.parts

        def gather(index):
            out = [tf.gather(p, index) for p in parts]
            out = [t.to_tensor() if isinstance(t, tf.RaggedTensor) else t for t in out]
            return tf.nest.pack_sequence_as(self.structure, out)

        return tf.data.Dataset.from_tensor_slices(indices).map(gather, num_parallel_calls=AUTOTUNE)


def epoch_batches(
    dataset: tf.data.Dataset,
    lengths: np.ndarray,
    epochs: range,
    *,
    seed: int = 0,
    dropout: dict | None = None,
    tokens_per_batch: int = 4096,
    max_batch: int = 64,
    buckets: int = 12,
    cache: bool = True,
    batching: str = "sorted",
) -> tuple[tf.data.Dataset, int]:
    """Training batches of the epochs `epochs` as one stream, and the batches per epoch
    (fit's ``steps_per_epoch``).

    ``batching="sorted"``: `keras_seq.pipelines.batching.sorted_batches` (length-sorted, token
    budget; `dataset` may already be the split's `ExampleTable`); ``"buckets"``: tf.data's length
    buckets over a 20,000-example shuffle buffer. Epoch e is shuffled with a seed made of
    (`seed`, e) and its word dropout (`dropout`: `word_dropout`'s keyword arguments) is keyed by
    (seed, e, batch), so a run resumed at epoch k trains on exactly the batches an uninterrupted
    run would have seen from epoch k on."""
    if batching == "sorted":
        table = dataset if isinstance(dataset, ExampleTable) else ExampleTable(dataset)
        count = len(sorted_batches(table.lengths, tokens_per_batch, max_batch))

        def one_epoch(epoch: int) -> tf.data.Dataset:
            rng = np.random.default_rng([seed, epoch])
            batches = table.batches(sorted_batches(table.lengths, tokens_per_batch, max_batch, rng))
            return word_dropout(batches, seed=seed, epoch=epoch, **dropout) if dropout else batches

        per_epoch = [one_epoch(e) for e in epochs] or [table.batches([])]
        stream = functools.reduce(tf.data.Dataset.concatenate, per_epoch)
        return stream.apply(tf.data.experimental.assert_cardinality(count * len(epochs))).prefetch(AUTOTUNE), count
    if batching != "buckets":
        raise ValueError(f"train.batching must be 'sorted' or 'buckets'; received {batching!r}")
    if cache:
        dataset = dataset.cache()
    boundaries, sizes = _bucket_plan(lengths, tokens_per_batch, max_batch, buckets)
    count = bucketed_batch_count(lengths, boundaries, sizes)
    buffer = min(len(lengths), 20000)

    def one_epoch(epoch: int) -> tf.data.Dataset:
        shuffled = dataset.shuffle(buffer, seed=seed * 1_000_003 + epoch, reshuffle_each_iteration=False)
        batches = bucket_by_length(shuffled, boundaries, sizes)
        return word_dropout(batches, seed=seed, epoch=epoch, **dropout) if dropout else batches

    # One dataset per epoch, concatenated: shuffle seeds must be Python numbers once a global seed is set.
    # (No epochs left: an empty stream of the same structure; `fit` is not called then.)
    per_epoch = [one_epoch(e) for e in epochs] or [bucket_by_length(dataset.take(0), boundaries, sizes)]
    stream = functools.reduce(tf.data.Dataset.concatenate, per_epoch)
    return stream.apply(tf.data.experimental.assert_cardinality(count * len(epochs))).prefetch(AUTOTUNE), count


def sorted_fixed_batches(table: ExampleTable, tokens_per_batch: int = 4096, max_batch: int = 64) -> tf.data.Dataset:
    """Evaluation batches: `sorted_batches` without shuffling (the same every pass), prefetched."""
    plan = sorted_batches(table.lengths, tokens_per_batch, max_batch)
    return table.batches(plan).apply(tf.data.experimental.assert_cardinality(len(plan))).prefetch(AUTOTUNE)


def batched(
    dataset: tf.data.Dataset,
    lengths: np.ndarray,
    *,
    tokens_per_batch: int = 4096,
    max_batch: int = 64,
    buckets: int = 12,
    shuffle: bool = True,
    seed: int = 0,
    bucketing: bool = True,
    fixed_length: int | None = None,
    cache: bool = True,
) -> tf.data.Dataset:
    """Shuffled (seeded), bucketed (or fixed-length) and prefetched batches."""
    if cache:
        dataset = dataset.cache()
    if shuffle:
        dataset = dataset.shuffle(min(len(lengths), 20000), seed=seed, reshuffle_each_iteration=True)
    dataset, count = _batches(
        dataset,
        lengths,
        tokens_per_batch=tokens_per_batch,
        max_batch=max_batch,
        buckets=buckets,
        bucketing=bucketing,
        fixed_length=fixed_length,
    )
    # Known batches per epoch: Keras shows real progress from the first epoch and never
    # guesses the epoch's length from a previous one.
    return dataset.apply(tf.data.experimental.assert_cardinality(count)).prefetch(AUTOTUNE)
