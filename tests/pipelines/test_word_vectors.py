"""Pretrained vectors in every common format, written small by the tests: GloVe text (no header,
tokens with spaces), word2vec text and binary, fastText .vec, gzip; coverage by exact, lower-cased
and digit-shape matches; a size that differs from embed_dim refused or reduced by PCA."""

from __future__ import annotations

import collections
import gzip

import numpy as np
import pytest

from keras_seq.contracts.vocab import Vocabulary
from keras_seq.pipelines.word_vectors import FASTTEXT_BIN_MAGIC, align_vectors, read_word_vectors

VECTORS = {
    "good": [1.0, 2.0, 3.0],
    "Bad": [4.0, 5.0, 6.0],  # the vocabulary has "bad": a lower-cased match
    "new york": [7.0, 8.0, 9.0],  # a token holding a space (GloVe 840B has such)
    "1996": [0.5, 0.5, 0.5],  # "2001" in the vocabulary: the same digit shape
    "other": [9.0, 9.0, 9.0],
}
VOCAB = Vocabulary.build(collections.Counter({"good": 5, "bad": 4, "new york": 3, "2001": 2, "meh": 1}))


def _text(header: bool) -> str:
    lines = [f"{w} " + " ".join(map(str, v)) for w, v in VECTORS.items()]
    return (f"{len(VECTORS)} 3\n" if header else "") + "\n".join(lines) + "\n"


def _binary() -> bytes:
    """word2vec's binary format: a word ends at its first space, so "new york" cannot be in it."""
    out = f"{len(VECTORS) - 1} 3\n".encode()
    for word, vector in VECTORS.items():
        if " " in word:
            continue
        out += word.encode() + b" " + np.asarray(vector, "<f4").tobytes() + b"\n"
    return out


@pytest.mark.parametrize(
    "name, content",
    [
        ("glove.txt", _text(header=False)),
        ("word2vec.txt", _text(header=True)),
        ("fasttext.vec", _text(header=True)),
        ("word2vec.bin", _binary()),
        ("glove.txt.gz", gzip.compress(_text(header=False).encode(), mtime=0)),
    ],
    ids=["glove", "word2vec text", "fasttext vec", "word2vec binary", "glove gzipped"],
)
def test_every_format_gives_the_same_matrix_and_coverage(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    spaces = not name.endswith(".bin")  # text formats carry tokens with spaces
    written = {w: v for w, v in VECTORS.items() if spaces or " " not in w}
    dim, pairs = read_word_vectors(path)
    assert dim == 3 and {w: list(v) for w, v in pairs} == written
    matrix, coverage = align_vectors(path, VOCAB, 3)
    assert matrix.shape == (len(VOCAB), 3) and not matrix[0].any()
    for word, expected in [("good", "good"), ("bad", "Bad"), ("new york", "new york"), ("2001", "1996")]:
        if expected in written:
            np.testing.assert_array_equal(matrix[VOCAB.index[word]], VECTORS[expected])
    exact = 1 + spaces
    assert (coverage.exact, coverage.lower_cased, coverage.digits, coverage.words) == (exact, 1, 1, 5)
    assert coverage.file_words == len(written) and coverage.fraction == pytest.approx((exact + 2) / 5)
    assert f"{exact + 2} of 5 words" in str(coverage) and f"{exact} exact, 1 lower-cased, 1 by digit shape" in str(
        coverage
    )


def test_an_exact_match_wins_over_a_lower_cased_one_whatever_the_order(tmp_path):
    path = tmp_path / "v.txt"
    path.write_text("Good 0 0 0\ngood 1 1 1\nGOOD 2 2 2\n", encoding="utf-8")
    matrix, coverage = align_vectors(path, VOCAB, 3)
    np.testing.assert_array_equal(matrix[VOCAB.index["good"]], [1, 1, 1])
    assert coverage.exact == 1 and coverage.lower_cased == 0


def test_a_different_size_is_refused_or_reduced_by_pca(tmp_path):
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(40)]
    vocab = Vocabulary.build(collections.Counter(dict.fromkeys(words, 1)))
    path = tmp_path / "v.txt"
    path.write_text("".join(f"{w} " + " ".join(f"{x:.5f}" for x in rng.normal(size=8)) + "\n" for w in words))
    with pytest.raises(
        ValueError, match=r'8 values and model.embed_dim is 4: set model.embed_dim = 8, or model.vectors_fit = "pca"'
    ):
        align_vectors(path, vocab, 4)
    with pytest.raises(ValueError, match="model.embed_dim is 16: set model.embed_dim = 8$"):
        align_vectors(path, vocab, 16, fit="pca")
    matrix, coverage = align_vectors(path, vocab, 4, fit="pca")
    assert matrix.shape == (len(vocab), 4) and coverage.exact == 40
    found = matrix[[vocab.index[w] for w in words]]
    assert np.allclose(found.mean(axis=0), 0, atol=1e-5)  # centred components
    variances = found.var(axis=0)
    assert np.all(np.diff(variances) <= 1e-6)  # the leading component first


@pytest.mark.parametrize(
    "content, message",
    [
        (b"good 1 2 3\nbad 4 5\n", r"v\.txt:2: expected a word and 3 values; the line has 3 fields"),
        (b"good 1 2 3\nbad 4 x 6\n", r"v\.txt:2: a vector value is not a number"),
        (b"good 1 2 3\nb\xffd 4 5 6\n", r"v\.txt:2: not UTF-8"),
        (b"", r"v\.txt: the vector file is empty"),
        (FASTTEXT_BIN_MAGIC.to_bytes(4, "little") + b"\0" * 60, r"a fastText \.bin model, not a vector file"),
        (b"5 3\ngood " + np.zeros(3, "<f4").tobytes() + b"\nbad \x00\x00", r"entry 2 of 5 is cut short"),
    ],
    ids=["too few values", "not a number", "not UTF-8", "empty", "fastText model", "truncated binary"],
)
def test_bad_vector_files_are_named_with_their_line(tmp_path, content, message):
    path = tmp_path / "v.txt"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=message):
        align_vectors(path, VOCAB, 3)
    with pytest.raises(FileNotFoundError, match="missing"):
        align_vectors(tmp_path / "none.txt", VOCAB, 3)
