"""Corpus statistics for `keras-seq data stats`."""

from __future__ import annotations

import tempfile

import numpy as np

from keras_seq.pipelines.batching import bucket_batch_sizes, length_boundaries, padded_share, sorted_padded_share
from keras_seq.pipelines.datasets import (
    LabelLookup,
    batched,
    build_label_vocab,
    encoded_dataset,
    first_ids,
    prepare_text_dir,
    split_lengths,
)
from keras_seq.pipelines.readers import open_corpus
from keras_seq.pipelines.readers.sources import SPLITS
from keras_seq.pipelines.tokenize import TokenizerSpec
from keras_seq.tasks import get_task


def corpus_stats(
    source: str,
    task: str,
    level: str = "word",
    max_len: int | None = None,
    vocab_size: int = 20000,
    min_count: int = 1,
    batch_size: int = 64,
    buckets: int = 12,
    lower: bool = True,
    **options,
) -> dict:
    """Statistics of the training split (and the <UNK> share on a held-out split).

    Padded shares are measured by running one epoch of the real batching
    pipelines: fixed-length padding to `max_len` (or the longest example)
    against length bucketing with `buckets` quantile buckets and about
    `batch_size` * mean-length tokens per batch, and (computed from the same
    plan `train` uses) length-sorted batches at that token budget.
    """
    corpus = open_corpus(source, task, **options)
    spec = TokenizerSpec(level=level, lower=lower, max_len=max_len)
    with tempfile.TemporaryDirectory() as tmp:
        encoder = prepare_text_dir(corpus, tmp, spec, vocab_size=vocab_size, min_count=min_count)
        labels = LabelLookup(build_label_vocab(corpus, tmp)) if corpus.pipeline.task.label_file else None
        # Read and tokenize the training split once; every later pass replays the cache.
        train = encoded_dataset(corpus, "train", encoder, labels).cache()
        lengths = split_lengths(train)
        held_out = "validation"
        try:
            unk_ids = np.concatenate(
                [np.asarray(first_ids(e)) for e in encoded_dataset(corpus, held_out, encoder, labels)]
            )
        except FileNotFoundError:
            held_out = "train"
            unk_ids = np.concatenate([np.asarray(first_ids(e)) for e in train])
        result = {
            "source": source,
            "split_rule": corpus.split_rule(),
            "split_examples": split_counts(corpus),
            "task": task,
            "level": level,
            "max_len": max_len,
            "examples": int(lengths.size),
            "tokens": int(lengths.sum()),
            "vocab_size": len(encoder.vocab),
            "length_quantiles": {f"p{q}": float(np.percentile(lengths, q)) for q in (0, 10, 25, 50, 75, 90, 99, 100)},
            "unk_share": float(np.mean(unk_ids == 1)) if unk_ids.size else 0.0,
            "unk_share_split": held_out,
        }
        if corpus.pipeline.task.stream:
            result.update(
                padded_share_fixed=0.0,
                padded_share_bucketed=0.0,
                padded_share_sorted=0.0,
                note="language modelling uses contiguous windows: nothing is padded",
            )
            return result
        fixed_len = max_len or int(lengths.max())
        fixed = batched(
            train, lengths, max_batch=batch_size, bucketing=False, fixed_length=fixed_len, shuffle=False, cache=False
        )
        tokens_per_batch = int(batch_size * lengths.mean())
        bucketed = batched(
            train,
            lengths,
            tokens_per_batch=tokens_per_batch,
            max_batch=4 * batch_size,
            buckets=buckets,
            shuffle=True,
            cache=False,
        )
        boundaries = length_boundaries(lengths, buckets)
        result.update(
            padded_share_fixed=padded_share(fixed)[0],
            padded_share_bucketed=padded_share(bucketed)[0],
            # what `train` does by default (train.batching = "sorted"), at the same token budget
            padded_share_sorted=sorted_padded_share(lengths, tokens_per_batch, 4 * batch_size),
            bucket_boundaries=boundaries,
            bucket_batch_sizes=bucket_batch_sizes(boundaries, tokens_per_batch, 4 * batch_size, int(lengths.max())),
        )
        return result


def split_counts(corpus) -> dict[str, int]:
    """Examples per split (a language model's text: characters); a split the source lacks is left out."""
    counts = {}
    for split in SPLITS:
        try:
            items = corpus.examples(split)
            counts[split] = sum(len(text) for text in items) if corpus.pipeline.task.stream else sum(1 for _ in items)
        except FileNotFoundError:
            continue
    return counts


def format_stats(stats: dict) -> str:
    q = stats["length_quantiles"]
    rule = stats["split_rule"]
    unit = "characters" if get_task(stats["task"]).stream else "examples"
    shares = "   ".join(f"{k} {v:,}" for k, v in stats["split_examples"].items())
    lines = [
        f"source   {stats['source']} ({stats['task']}, {stats['level']} level, max_len={stats['max_len']})",
        f"splits   {shares} {unit} (all: {sum(stats['split_examples'].values()):,})",
        "         " + rule["rule"] + "".join(f"; {k}={v}" for k, v in rule.items() if k != "rule"),
        f"train    {stats['examples']:,} examples   tokens {stats['tokens']:,}   vocabulary {stats['vocab_size']:,}",
        "lengths  " + "  ".join(f"{k}={v:g}" for k, v in q.items()),
        f"<UNK>    {stats['unk_share']:.2%} of {stats['unk_share_split']} tokens",
        f"padding  fixed-length {stats['padded_share_fixed']:.1%}   bucketed {stats['padded_share_bucketed']:.1%}   "
        f"length-sorted {stats['padded_share_sorted']:.1%}",
    ]
    return "\n".join(lines)
