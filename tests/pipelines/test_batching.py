"""Vocabulary, tf.data batching (bucketing, padding, determinism), LM tracks and stats."""

from __future__ import annotations

import collections
import json
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from keras_seq.pipelines.batching import bucket_batch_sizes, length_boundaries, lm_tracks, padded_share
from keras_seq.pipelines.datasets import (
    LabelLookup,
    batched,
    build_label_vocab,
    encoded_dataset,
    prepare_text_dir,
    split_lengths,
)
from keras_seq.pipelines.readers import open_corpus
from keras_seq.pipelines.tokenize import TokenizerSpec
from keras_seq.pipelines.vocab import Vocabulary, load_word_vectors


def test_vocabulary_top_v_min_count_and_ties(tmp_path):
    counts = collections.Counter({"b": 3, "a": 3, "c": 5, "rare": 1, "<UNK>": 9})
    vocab = Vocabulary.build(counts, max_size=5, min_count=2)
    assert vocab.tokens == ["<PAD>", "<UNK>", "c", "a", "b"]  # ties by token, reserved kept
    vocab.save(tmp_path / "v.txt")
    assert Vocabulary.load(tmp_path / "v.txt").tokens == vocab.tokens
    assert vocab.ids(["c", "zzz", "<PAD>"]) == [2, 1, 1]
    chars = Vocabulary.build(collections.Counter("ab\n\t"), level="char")
    chars.save(tmp_path / "c.txt")
    assert Vocabulary.load(tmp_path / "c.txt", level="char").tokens == chars.tokens


def test_pretrained_vectors_align_with_vocabulary(tmp_path):
    vocab = Vocabulary.build(collections.Counter({"good": 2, "bad": 1, "meh": 1}))
    (tmp_path / "vec.txt").write_text("3 2\ngood 1 2\nbad 3 4\nother 5 6\n", encoding="utf-8")
    matrix, coverage = load_word_vectors(tmp_path / "vec.txt", vocab)
    assert matrix.shape == (5, 2)
    np.testing.assert_array_equal(matrix[vocab.index["good"]], [1, 2])
    np.testing.assert_array_equal(matrix[0], [0, 0])
    assert coverage == pytest.approx(2 / 3)
    (tmp_path / "bad.txt").write_text("good 1 2\nbad 3\n", encoding="utf-8")
    with pytest.raises(ValueError, match="bad.txt:2"):
        load_word_vectors(tmp_path / "bad.txt", vocab)


def test_length_boundaries_and_batch_sizes():
    lengths = np.arange(1, 1001)
    boundaries = length_boundaries(lengths, 4)
    assert boundaries == sorted(boundaries) and len(boundaries) == 3
    sizes = bucket_batch_sizes(boundaries, tokens_per_batch=5000, max_batch=64, longest=1000)
    assert len(sizes) == 4 and sizes[0] >= sizes[-1] and sizes[-1] == 5


def _small_ewt(tmp_path, data_dir, n=600):
    """The first `n` sentences of EWT train and dev as a small treebank folder."""
    for split in ("train", "dev"):
        text = (data_dir / "ud_english_ewt" / f"en_ewt-ud-{split}.conllu").read_text(encoding="utf-8")
        blocks = text.split("\n\n")[:n]
        (tmp_path / f"small-{split}.conllu").write_text("\n\n".join(blocks) + "\n\n", encoding="utf-8")
    return open_corpus(tmp_path, "tag")


def test_tagging_pipeline_bucketing_masks_and_determinism(tmp_path, data_dir):
    corpus = _small_ewt(tmp_path, data_dir)
    encoder = prepare_text_dir(corpus, tmp_path / "run", TokenizerSpec(level="word", max_len=40), vocab_size=2000)
    tags = LabelLookup(build_label_vocab(corpus, tmp_path / "run", "tags.txt"))
    train = encoded_dataset(corpus, "train", encoder, tags)
    lengths = split_lengths(train)
    assert lengths.size == 600 and lengths.max() <= 40

    def batches(seed):
        ds = batched(train, lengths, tokens_per_batch=400, max_batch=32, buckets=6, seed=seed)
        return [(x.numpy(), y.numpy()) for x, y in ds]

    first, again, other = batches(1), batches(1), batches(2)
    assert all(np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) for a, b in zip(first, again))
    assert len(first) == len(again)
    assert not all(a[0].shape == b[0].shape and np.array_equal(a[0], b[0]) for a, b in zip(first, other))
    for x, y in first:
        assert x.shape == y.shape and x.shape[0] <= 32
        assert np.array_equal(x == 0, y == 0)  # the mask of ids is the mask of tags
        valid = (x != 0).sum(1)
        assert np.all(x[np.arange(len(x)), valid - 1] != 0)  # right padding only
    assert sum(len(x) for x, _ in first) == 600
    fixed = batched(train, lengths, max_batch=32, bucketing=False, fixed_length=40, shuffle=False)
    bucketed = batched(train, lengths, tokens_per_batch=400, max_batch=32, buckets=6)
    assert padded_share(bucketed)[0] < padded_share(fixed)[0]


def test_lm_tracks_continue_across_windows():
    ids = np.arange(1, 1002)
    batches = [(x.numpy(), y.numpy()) for x, y in lm_tracks(ids, batch_size=4, window=10)]
    assert len(batches) == 25
    for k in range(len(batches) - 1):
        np.testing.assert_array_equal(batches[k + 1][0][:, 0], batches[k][0][:, -1] + 1)
    for x, y in batches:
        np.testing.assert_array_equal(y, x + 1)
    with pytest.raises(ValueError, match="too short"):
        lm_tracks(np.arange(10), batch_size=4, window=10)


def test_data_stats_cli_json(tmp_path, data_dir):
    _small_ewt(tmp_path, data_dir, n=300)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "keras_seq.cli",
            "data",
            "stats",
            str(tmp_path),
            "--task",
            "tag",
            "--json",
            "--max-len",
            "30",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    stats = json.loads(result.stdout.strip().splitlines()[-1])
    assert stats["examples"] == 300
    for key in ("unk_share", "padded_share_fixed", "padded_share_bucketed", "padded_share_sorted"):
        assert 0.0 <= stats[key] <= 1.0
    assert stats["padded_share_sorted"] < stats["padded_share_bucketed"] < stats["padded_share_fixed"]
    assert stats["tokens"] == sum(min(30, n) for n in [len(w) for w, _ in open_corpus(tmp_path, "tag").examples()])


def test_data_stats_cli_bad_source_is_a_clear_error(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "keras_seq.cli", "data", "stats", str(tmp_path / "missing"), "--task", "lm"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "no such data source" in result.stderr and "Traceback" not in result.stderr


def test_char_lm_stream_encodes_whole_text(tmp_path, data_dir):
    corpus = open_corpus(data_dir / "tinyshakespeare" / "input.txt", "lm")
    encoder = prepare_text_dir(corpus, tmp_path, TokenizerSpec(level="char", lower=False), vocab_size=None)
    ids = next(iter(encoded_dataset(corpus, "validation", encoder))).numpy()
    assert ids.size == 111540
    assert len(encoder.vocab) == 65 + 2  # tiny-shakespeare has 65 distinct characters
    assert tf.reduce_min(ids) >= 1


def test_word_dropout_replaces_singletons_more_often():
    import tensorflow as tf

    from keras_seq.pipelines.datasets import word_dropout

    ids = tf.constant([[2, 3, 50, 60, 0]] * 4000, tf.int64)
    dataset = tf.data.Dataset.from_tensors((ids, ids))
    out = next(iter(word_dropout(dataset, 0.1, 0, singletons_from=50, singleton_rate=0.5)))[0].numpy()
    unk = (out == 1).mean(axis=0)
    assert abs(unk[0] - 0.1) < 0.03 and abs(unk[2] - 0.5) < 0.05 and unk[4] == 0.0  # padding stays padding
    same = next(iter(word_dropout(dataset, 0.0, 0)))[0].numpy()
    assert (same == ids.numpy()).all()


@pytest.mark.parametrize("batching", ["sorted", "buckets"])
def test_epoch_stream_resumed_at_epoch_k_sees_the_batches_of_an_uninterrupted_run(batching):
    """What makes a resumed run exact: epoch e's order and word dropout depend on (seed, e) only."""
    import tensorflow as tf

    from keras_seq.pipelines.datasets import epoch_batches

    rng = np.random.default_rng(0)
    rows = [rng.integers(2, 50, size=int(n)) for n in rng.integers(1, 30, size=200)]
    dataset = tf.data.Dataset.from_generator(
        lambda: ((r, r) for r in rows),
        output_signature=(tf.TensorSpec([None], tf.int64), tf.TensorSpec([None], tf.int64)),
    )
    lengths = np.array([len(r) for r in rows])
    options = dict(seed=3, dropout=dict(rate=0.2), tokens_per_batch=200, max_batch=16, buckets=4, batching=batching)
    full, steps = epoch_batches(dataset, lengths, range(0, 4), **options)
    resumed, same_steps = epoch_batches(dataset, lengths, range(2, 4), **options)
    full_batches = [x.numpy() for x, _ in full]
    resumed_batches = [x.numpy() for x, _ in resumed]
    assert steps == same_steps and len(full_batches) == 4 * steps and len(resumed_batches) == 2 * steps
    assert all(np.array_equal(a, b) for a, b in zip(full_batches[2 * steps :], resumed_batches))
    epoch0, epoch1 = full_batches[:steps], full_batches[steps : 2 * steps]
    assert not all(a.shape == b.shape and np.array_equal(a, b) for a, b in zip(epoch0, epoch1))  # reshuffled
    assert any((b == 1).any() for b in epoch0)  # word dropout happened (<UNK> = 1)


def test_sorted_batches_cover_every_example_once_under_the_budget_and_vary_by_epoch():
    from keras_seq.pipelines.batching import sorted_batches, sorted_padded_share

    lengths = np.random.default_rng(0).zipf(1.6, 5000).clip(1, 900)  # a long tail, like review lengths
    plans = [sorted_batches(lengths, 2048, 64, np.random.default_rng([7, epoch])) for epoch in range(3)]
    for plan in plans:
        assert sorted(np.concatenate(plan).tolist()) == list(range(5000))
        for batch in plan:
            assert len(batch) <= 64 and (len(batch) == 1 or len(batch) * lengths[batch].max() <= 2048)
    assert len({len(plan) for plan in plans}) == 1  # the same count every epoch: fit's steps_per_epoch
    assert [b.tolist() for b in plans[0]] != [b.tolist() for b in plans[1]]  # other batches, other order
    assert {frozenset(b.tolist()) for b in plans[0]} != {frozenset(b.tolist()) for b in plans[1]}
    again = sorted_batches(lengths, 2048, 64, np.random.default_rng([7, 0]))
    assert [b.tolist() for b in again] == [b.tolist() for b in plans[0]]  # a seed reproduces them
    assert sorted_padded_share(lengths, 2048, 64) < 0.03  # 2.5 %: a sparse tail of 5,000; real corpora pad less


def test_example_table_pads_every_part_of_an_element():
    import tensorflow as tf

    from keras_seq.pipelines.datasets import ExampleTable

    rows = [np.arange(1, n + 1) for n in (3, 1, 5)]
    dataset = tf.data.Dataset.from_generator(
        lambda: (((r, np.stack([r, r * 10], axis=1)), r * 2) for r in rows),
        output_signature=(
            (tf.TensorSpec([None], tf.int64), tf.TensorSpec([None, None], tf.int64)),
            tf.TensorSpec([None], tf.int64),
        ),
    )
    table = ExampleTable(dataset)
    assert table.lengths.tolist() == [3, 1, 5]
    (ids, chars), tags = next(iter(table.batches([np.array([2, 1])])))
    assert ids.numpy().tolist() == [[1, 2, 3, 4, 5], [1, 0, 0, 0, 0]]
    assert chars.shape == (2, 5, 2) and chars.numpy()[1, 0].tolist() == [1, 10] and (chars.numpy()[1, 1:] == 0).all()
    assert tags.numpy().tolist() == [[2, 4, 6, 8, 10], [2, 0, 0, 0, 0]]
