"""Batching on tf.data: length bucketing, fixed-length padding and LM tracks.

Padding is always id 0 on the right, so a model's mask is ``ids != 0``
(``Embedding(mask_zero=True)``), and ONNX ``sequence_lens`` = number of
non-zero ids.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf

AUTOTUNE = tf.data.AUTOTUNE


def length_boundaries(lengths: Sequence[int], buckets: int = 12) -> list[int]:
    """Bucket upper bounds (exclusive, as tf.data wants them) at the length
    quantiles of the training data, so every bucket holds a similar number
    of examples."""
    if buckets < 1:
        raise ValueError(f"`buckets` must be >= 1; received {buckets}")
    lengths = np.asarray(lengths)
    if lengths.size == 0:
        raise ValueError("cannot derive bucket boundaries from an empty corpus")
    qs = np.quantile(lengths, np.linspace(0, 1, buckets + 1)[1:-1], method="higher")
    return sorted({int(q) + 1 for q in qs if q + 1 <= lengths.max()})


def bucket_batch_sizes(boundaries: Sequence[int], tokens_per_batch: int, max_batch: int, longest: int) -> list[int]:
    """One batch size per bucket so that a batch holds about `tokens_per_batch`
    tokens (never more than `max_batch` sequences)."""
    uppers = [b - 1 for b in boundaries] + [max(longest, boundaries[-1] if boundaries else 1)]
    return [int(max(1, min(max_batch, tokens_per_batch // max(1, u)))) for u in uppers]


def bucketed_batch_count(lengths: Sequence[int], boundaries: Sequence[int], batch_sizes: Sequence[int]) -> int:
    """Batches per epoch of `bucket_by_length`: each bucket flushes its remainder
    at the end, so the count does not depend on the shuffled order."""
    buckets = np.searchsorted(
        np.asarray(boundaries), np.asarray(lengths), side="right"
    )  # boundaries[i-1] <= n < boundaries[i]
    counts = np.bincount(buckets, minlength=len(batch_sizes))
    return int(sum(-(-int(c) // int(size)) for c, size in zip(counts, batch_sizes)))


def _length(inputs, *targets) -> tf.Tensor:
    ids = inputs[0] if isinstance(inputs, tuple) else inputs  # (ids, chars) for char-aware taggers
    return tf.shape(ids)[0]


def sorted_batches(
    lengths: Sequence[int],
    tokens_per_batch: int,
    max_batch: int,
    rng: np.random.Generator | None = None,
    max_padded_share: float = 0.03,
    min_rows: int = 8,
) -> list[np.ndarray]:
    """fairseq's batching (Ott et al. 2019, ``batch_by_size``): example indices sorted by length,
    ties in a random order drawn from `rng`, cut greedily into batches of at most `max_batch` rows
    and `tokens_per_batch` padded tokens (rows x the longest; a longer example is a batch alone);
    with `rng`, the batches are then shuffled.

    One rule more than fairseq's: a batch of at least `min_rows` rows is also cut before an
    example that would raise its padded share above `max_padded_share`. On a small corpus (a few
    hundred sentences) the token budget lets one batch run from length 1 to length 8, which is
    40 % padding; the cap keeps such batches to neighbouring lengths, and `min_rows` keeps it
    from making batches of a row or two (slow steps, and under a strategy fewer rows than
    replicas). On the shipped corpora the budget cuts first and the cap changes little.

    The cuts depend on the sorted lengths only, so every epoch has the same number of batches
    of the same shapes; what changes from epoch to epoch (a new `rng`) is which of the examples
    of equal length share a batch, and the order of the batches. Padding is what separates
    neighbours in length order: a few tenths of a percent on the shipped corpora."""
    lengths = np.asarray(lengths)
    order = np.arange(len(lengths)) if rng is None else rng.permutation(len(lengths))
    order = order[np.argsort(lengths[order], kind="stable")]
    cuts, start, real = [], 0, 0
    for i, n in enumerate(lengths[order].tolist()):
        rows, width = i - start + 1, max(n, 1)
        if i > start and (
            rows > max_batch
            or rows * width > tokens_per_batch
            or (rows > min_rows and 1.0 - (real + n) / (rows * width) > max_padded_share)
        ):
            cuts.append(i)
            start, real = i, 0
        real += n
    batches = np.split(order, cuts) if len(order) else []
    if rng is not None:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    return batches


def sorted_padded_share(lengths: Sequence[int], tokens_per_batch: int, max_batch: int) -> float:
    """The share of padded positions under `sorted_batches` (the same every epoch)."""
    lengths = np.asarray(lengths)
    batches = sorted_batches(lengths, tokens_per_batch, max_batch)
    total = sum(len(b) * int(lengths[b].max()) for b in batches if len(b))
    return 1.0 - float(lengths.sum()) / total if total else 0.0


def bucket_by_length(
    dataset: tf.data.Dataset, boundaries: Sequence[int], batch_sizes: Sequence[int]
) -> tf.data.Dataset:
    """Groups (ids, target...) elements into batches of similar length, padded
    with 0 to the longest in the batch."""
    if len(batch_sizes) != len(boundaries) + 1:
        raise ValueError("need one batch size per bucket (len(boundaries) + 1)")
    return dataset.bucket_by_sequence_length(
        element_length_func=_length,
        bucket_boundaries=list(boundaries),
        bucket_batch_sizes=list(batch_sizes),
        pad_to_bucket_boundary=False,
        drop_remainder=False,
    )


def fixed_length_batches(dataset: tf.data.Dataset, batch_size: int, length: int) -> tf.data.Dataset:
    """The baseline: every sequence padded to `length`."""
    spec = dataset.element_spec
    if isinstance(spec, tuple):
        shapes = tuple([length] if s.shape.rank == 1 else [] for s in spec)
    else:
        shapes = [length]
    return dataset.padded_batch(batch_size, padded_shapes=shapes)


def lm_tracks(ids: np.ndarray, batch_size: int, window: int) -> tf.data.Dataset:
    """Stateful truncated-BPTT batches from one id stream.

    The stream is cut into `batch_size` contiguous tracks; batch k holds window
    k of every track, so row b of batch k+1 continues row b of batch k.
    Elements are (inputs, next-token targets), each (batch_size, window).
    """
    ids = np.asarray(ids)
    track_len = (len(ids) - 1) // batch_size
    windows = track_len // window
    if windows < 1:
        raise ValueError(
            f"the text is too short for {batch_size} tracks of windows of {window} tokens ({len(ids)} tokens)"
        )
    usable = windows * window
    inputs = ids[: batch_size * track_len].reshape(batch_size, track_len)[:, :usable]
    targets = ids[1 : batch_size * track_len + 1].reshape(batch_size, track_len)[:, :usable]
    x = inputs.reshape(batch_size, windows, window).transpose(1, 0, 2)
    y = targets.reshape(batch_size, windows, window).transpose(1, 0, 2)
    return tf.data.Dataset.from_tensor_slices((x, y))


def padded_share(batches: tf.data.Dataset) -> tuple[float, int, int]:
    """(share of padded positions, padded, total) over one pass of id batches."""
    padded = total = 0
    for batch in batches:
        ids = batch[0] if isinstance(batch, tuple) else batch
        ids = ids.numpy()
        padded += int((ids == 0).sum())
        total += ids.size
    return (padded / total if total else 0.0), padded, total
