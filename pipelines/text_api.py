"""The training pipeline for your own code: the tokenizer, vocabulary, length
bucketing and masks that ``keras-seq train`` uses, on texts you already have.

    tok = TextTokenizer.fit(texts, level="word", vocab_size=20000, max_len=400)
    ds = text_dataset(texts, labels, tokenizer=tok, tokens_per_batch=4096, shuffle_seed=0)
    model.fit(ds)

Texts are Python lists (or any iterable) of strings, or a ``tf.data.Dataset`` of
strings; taggers give token lists and tag lists. `TextTokenizer.save` writes the
``tokenizer.json`` contract (`keras_seq.contracts.tokenizer`) with its vocabulary,
which every exporter and both tokenizer twins read.
"""

from __future__ import annotations

import collections
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import tensorflow as tf

from keras_seq.contracts.tokenizer import TOKENIZER_FILE, TokenizerSpec
from keras_seq.contracts.vocab import Vocabulary
from keras_seq.pipelines.datasets import ENCODE_BATCH, batched, key_counts, split_lengths, unbatch_ragged
from keras_seq.pipelines.tokenize import normalize_tokens, tokenize, truncate
from keras_seq.pipelines.vocab import TextEncoder


def _string_batches(texts) -> tf.data.Dataset:
    if isinstance(texts, tf.data.Dataset):
        return texts.batch(ENCODE_BATCH)
    if isinstance(texts, (str, bytes)):
        raise TypeError("texts must be a list (or dataset) of strings, not one string")
    texts = list(texts)
    if texts and not isinstance(texts[0], (str, bytes)):  # token lists (taggers)
        return tf.data.Dataset.from_tensor_slices(tf.ragged.constant(texts, dtype=tf.string)).batch(ENCODE_BATCH)
    return tf.data.Dataset.from_tensor_slices(tf.constant(texts, tf.string)).batch(ENCODE_BATCH)


# The folders of fitted tokenizers: removed when the process exits (not when a tokenizer is garbage-
# collected: `TextTokenizer.load(fitted.directory)` may still read them).
_FITTED: list[tempfile.TemporaryDirectory] = []


class TextTokenizer:
    """Text -> ids with the package's one tokenizer (`keras_seq.pipelines.tokenize`), as
    `TextEncoder`, plus `fit` (a vocabulary from your texts), `save` and `load`."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.encoder = TextEncoder(self.directory)
        self.spec: TokenizerSpec = self.encoder.spec
        self.vocab: Vocabulary = self.encoder.vocab

    @classmethod
    def fit(
        cls,
        texts,
        *,
        level: str = "word",
        vocab_size: int | None = 20000,
        min_count: int = 1,
        max_len: int | None = None,
        lower: bool = True,
        truncate: str = "tail",
    ) -> TextTokenizer:
        """A vocabulary of the `vocab_size` most frequent tokens of `texts` (strings, or
        token lists for taggers); ids 0 and 1 are <PAD> and <UNK>. Its files live in a temporary
        folder until the process exits; `save` keeps them."""
        spec = TokenizerSpec(level=level, lower=lower, max_len=max_len, truncate=truncate)
        counts: collections.Counter = collections.Counter()
        for batch in _string_batches(texts):
            tokens = normalize_tokens(batch, spec) if isinstance(batch, tf.RaggedTensor) else tokenize(batch, spec)
            counts.update(t.decode("utf-8") for t in tokens.flat_values.numpy())
        if not counts:
            raise ValueError("TextTokenizer.fit: the texts hold no tokens")
        folder = tempfile.TemporaryDirectory(prefix="keras-seq-tokenizer-")
        _FITTED.append(folder)
        directory = Path(folder.name)
        Vocabulary.build(key_counts(counts, spec), max_size=vocab_size, min_count=min_count, level=level).save(
            directory / spec.vocab_file
        )
        spec.save(directory)
        return cls(directory)

    @classmethod
    def load(cls, directory: str | Path) -> TextTokenizer:
        """A tokenizer saved by `save` (or a run or export's tokenizer folder)."""
        return cls(directory)

    def save(self, directory: str | Path) -> Path:
        """Writes ``tokenizer.json`` and the vocabulary files it names into `directory`."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        for name in filter(None, (TOKENIZER_FILE, self.spec.vocab_file, self.spec.char_vocab_file)):
            if (self.directory / name).resolve() != (directory / name).resolve():
                shutil.copy2(self.directory / name, directory / name)
        return directory

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def encode(self, texts) -> tf.RaggedTensor:
        """Strings (batch,) -> ragged int64 ids; token lists -> the same, without splitting."""
        if isinstance(texts, (list, tuple)) and texts and not isinstance(texts[0], (str, bytes)):
            return self.encoder.encode_tokens(tf.ragged.constant(texts, dtype=tf.string))
        return self.encoder.encode(tf.constant(texts, tf.string) if isinstance(texts, (list, tuple)) else texts)

    def __call__(self, texts) -> np.ndarray:
        """Right-padded ids, ready for `model.predict`."""
        return self.encode(texts).to_tensor(0).numpy()


def label_ids(labels: Sequence, names: Sequence[str] | None = None) -> tuple[list, list[str] | None]:
    """Class labels -> ids: integers stay, strings get ids by `names` (default: sorted).
    Tag lists -> lists of ids the same way (id 0 is kept for padding, so tags count from 1)."""
    labels = list(labels)
    if not labels:
        raise ValueError("no labels")
    if isinstance(labels[0], (list, tuple)):  # tags
        names = list(names) if names is not None else sorted({t for row in labels for t in row})
        index = {name: i + 1 for i, name in enumerate(names)}
        return [[index[t] for t in row] for row in labels], names
    if all(isinstance(x, (int, np.integer)) for x in labels):
        return [int(x) for x in labels], None
    names = list(names) if names is not None else sorted({str(x) for x in labels})
    index = {name: i for i, name in enumerate(names)}
    unknown = [x for x in labels if str(x) not in index]
    if unknown:
        raise ValueError(f"labels {sorted(set(map(str, unknown)))[:5]} are not among {names}")
    return [index[str(x)] for x in labels], names


def text_dataset(
    texts,
    labels: Iterable | None = None,
    *,
    tokenizer: TextTokenizer,
    tokens_per_batch: int = 4096,
    max_batch: int = 64,
    buckets: int = 12,
    shuffle_seed: int | None = 0,
    label_names: Sequence[str] | None = None,
) -> tf.data.Dataset:
    """Length-bucketed, padded batches for `model.fit`: (ids, label ids) or just ids.

    Classifiers: `labels` are class names or ids (names get ids in sorted order, or
    by `label_names`). Taggers: `texts` are token lists and `labels` tag lists of
    the same lengths (tag ids from 1; 0 pads). Batches hold about
    `tokens_per_batch` tokens (at most `max_batch` rows); `shuffle_seed=None`
    keeps the order. Rows are right-padded with 0, so ``Embedding(mask_zero=True)``
    masks exactly the padding."""
    ids = unbatch_ragged(
        _string_batches(texts).map(
            lambda batch: (
                tokenizer.encode(batch)
                if not isinstance(batch, tf.RaggedTensor)
                else tokenizer.encoder.encode_tokens(batch)
            )
        )
    )
    if labels is not None:
        targets, _ = label_ids(labels, label_names)
        if isinstance(targets[0], list):
            target_ds = unbatch_ragged(
                tf.data.Dataset.from_tensor_slices(tf.ragged.constant(targets, dtype=tf.int64))
                .batch(ENCODE_BATCH)
                .map(lambda t: truncate(t, tokenizer.spec))
            )
        else:
            target_ds = tf.data.Dataset.from_tensor_slices(tf.constant(targets, tf.int64))
        ids = tf.data.Dataset.zip((ids, target_ds))
    ids = ids.cache()
    lengths = split_lengths(ids)
    if lengths.size == 0:
        raise ValueError("text_dataset: no texts")
    return batched(
        ids,
        np.maximum(lengths, 1),
        tokens_per_batch=tokens_per_batch,
        max_batch=max_batch,
        buckets=buckets,
        shuffle=shuffle_seed is not None,
        seed=shuffle_seed or 0,
        cache=False,
    )
