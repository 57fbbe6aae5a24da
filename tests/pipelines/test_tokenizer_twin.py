"""The TF tokenizer (pipelines) and its pure-Python twin (serving) agree byte for byte."""

from __future__ import annotations

import collections
import itertools

import numpy as np
import pytest
import tensorflow as tf

from keras_seq.pipelines.datasets import key_counts
from keras_seq.pipelines.readers import open_corpus
from keras_seq.pipelines.tokenize import TokenizerSpec, tokenize
from keras_seq.pipelines.vocab import TextEncoder, Vocabulary
from keras_seq.serving.tokenizer_twin import TextTokenizer

ADVERSARIAL = [
    "",
    "   \t\n ",
    "qwzx blorft zzyzx",
    "Good, NOT bad at all!<br /><br />Really.<BR>x<br/>y",
    "emoji 😀👍🏽 and flags 🇺🇸",
    "combining: e\u0301 a\u0308 \u0915\u094d\u0937",
    "right-to-left: \u05e9\u05dc\u05d5\u05dd \u0645\u0631\u062d\u0628\u0627",
    "control \x00\x01\x1c\x1f\x7f chars\u2028\u00a0nbsp",
    "İSTANBUL ǅ ß ẞ Σ",
    "don't stop-believing (1999) $5.00 a@b.c ~!?",
    "word " * 5000,
]
INVALID_UTF8 = [b"ok \xff\xfe bad", b"\xc3\x28 x", b"trunc \xe2\x82", b"\xed\xa0\x80 surrogate", b"\xf0\x9f\x98"]


def _write_dir(tmp_path, level: str, tokens: list[str], max_len=None, truncate="tail", lower=True):
    spec = TokenizerSpec(level=level, lower=lower, max_len=max_len, truncate=truncate)
    counts = collections.Counter({t: 100 - i for i, t in enumerate(tokens)})
    Vocabulary.build(counts, level=level).save(tmp_path / spec.vocab_file)
    spec.save(tmp_path)
    return TextEncoder(tmp_path), TextTokenizer(tmp_path)


def _assert_same(encoder: TextEncoder, twin: TextTokenizer, texts: list, batch: int = 1000) -> int:
    checked = 0
    for start in range(0, len(texts), batch):
        chunk = texts[start : start + batch]
        ids = encoder.encode(tf.constant(chunk)).to_list()
        tokens = encoder.tokens(tf.constant(chunk)).to_list()
        for text, row, toks in zip(chunk, ids, tokens):
            assert twin.encode(text) == row, f"ids differ for {text[:80]!r}"
            assert [t.encode("utf-8") for t in twin.tokens(text)] == toks, f"tokens differ for {text[:80]!r}"
            checked += 1
    return checked


@pytest.mark.parametrize("level", ["word", "char"])
@pytest.mark.parametrize("truncate", ["tail", "head"])
def test_twin_on_adversarial_and_invalid_utf8(tmp_path, level, truncate):
    vocab = ["good", "bad", ",", "!", "not", "word", "😀", "e", "a", "o", "d", "<", ">"]
    if level == "char":
        vocab = [t for t in vocab if len(t) == 1] + [" ", "\n", "\t", "\x00", "\u0301"]
    encoder, twin = _write_dir(tmp_path, level, vocab, max_len=50, truncate=truncate)
    assert _assert_same(encoder, twin, ADVERSARIAL) == len(ADVERSARIAL)
    for raw in INVALID_UTF8:  # replacement, identical in both runtimes
        assert encoder.encode(tf.constant([raw])).to_list()[0] == twin.encode(raw)
        assert [t.encode() for t in twin.tokens(raw)] == encoder.tokens(tf.constant([raw])).to_list()[0]


def test_tokenizer_rules():
    spec = TokenizerSpec(level="word", lower=True)
    tokens = tokenize(tf.constant(["Good, NOT bad!<br />Ünïcode Ä"]), spec).to_list()[0]
    assert tokens == [b"good", b",", b"not", b"bad", b"!", "Ünïcode".encode(), "Ä".encode()]
    head = tokenize(tf.constant(["a b c d"]), TokenizerSpec(max_len=2, truncate="head")).to_list()[0]
    assert head == [b"c", b"d"]


def test_twin_on_all_imdb_test_reviews(tmp_path, data_dir):
    corpus = open_corpus(data_dir / "imdb" / "aclImdb_v1.tar.gz", "classify")
    reviews = [text for text, _ in corpus.examples("test")]
    assert len(reviews) == 25000
    # A real vocabulary: the most frequent tokens of 5,000 reviews, from the TF side.
    counts: collections.Counter = collections.Counter()
    spec = TokenizerSpec(level="word", lower=True, max_len=400)
    for start in range(0, 5000, 1000):
        counts.update(
            t.decode() for t in tokenize(tf.constant(reviews[start : start + 1000]), spec).flat_values.numpy()
        )
    Vocabulary.build(counts, max_size=20000).save(tmp_path / "vocab.txt")
    spec.save(tmp_path)
    assert _assert_same(TextEncoder(tmp_path), TextTokenizer(tmp_path), reviews) == 25000


def test_twin_on_all_ewt_test_sentences(tmp_path, data_dir):
    sentences = [" ".join(words) for words, _ in open_corpus(data_dir / "ud_english_ewt", "tag").examples("test")]
    assert len(sentences) == 2077
    for level in ("word", "char"):
        sub = tmp_path / level
        sub.mkdir()
        counts = collections.Counter(
            itertools.chain.from_iterable((s.lower().split() if level == "word" else list(s)) for s in sentences[:1000])
        )
        spec = TokenizerSpec(level=level, lower=level == "word")
        Vocabulary.build(counts, level=level).save(sub / spec.vocab_file)
        spec.save(sub)
        assert _assert_same(TextEncoder(sub), TextTokenizer(sub), sentences) == 2077


def test_encode_batch_pads_right_with_min_length(tmp_path):
    _, twin = _write_dir(tmp_path, "word", ["a", "b"])
    ids, lengths = twin.encode_batch(["a b a", "", "zzz"])
    assert ids.tolist() == [[2, 3, 2], [0, 0, 0], [1, 0, 0]]
    assert lengths.tolist() == [3, 0, 1]
    ids, lengths = twin.encode_batch(["", ""])
    assert ids.shape == (2, 1) and np.all(ids == 0)


@pytest.mark.parametrize("keys", [False, True], ids=["exact-keys", "lower-zero-keys"])
def test_twin_word_characters_on_ewt_test(tmp_path, data_dir, keys):
    sentences = [" ".join(words) for words, _ in open_corpus(data_dir / "ud_english_ewt", "tag").examples("test")]
    counts = collections.Counter(itertools.chain.from_iterable(s.split() for s in sentences[:500]))
    spec = TokenizerSpec(
        level="word", lower=False, char_vocab_file="chars.txt", max_word_len=6, lower_words=keys, zero_digits=keys
    )
    Vocabulary.build(key_counts(counts, spec)).save(tmp_path / "vocab.txt")
    char_counts = collections.Counter(itertools.chain.from_iterable(sentences[:500]))
    char_counts.pop(" ", None)
    Vocabulary.build(char_counts, level="char").save(tmp_path / "chars.txt")
    spec.save(tmp_path)
    encoder, twin = TextEncoder(tmp_path), TextTokenizer(tmp_path)
    for start in range(0, len(sentences), 500):
        chunk = sentences[start : start + 500]
        chars = encoder.encode_chars(encoder.tokens(tf.constant(chunk))).to_list()
        ids = encoder.encode(tf.constant(chunk)).to_list()
        for text, row, id_row in zip(chunk, chars, ids):
            assert twin.word_chars(twin.tokens(text)) == row
            assert twin.encode(text) == id_row


def test_word_keys_share_ids_and_keep_characters(tmp_path):
    spec = TokenizerSpec(level="word", lower=False, char_vocab_file="chars.txt", lower_words=True, zero_digits=True)
    counts = key_counts(collections.Counter({"The": 3, "the": 2, "THE": 1, "1999": 2, "2024": 1, "Ünï": 1}), spec)
    assert counts == {"the": 6, "0000": 3, "Ünï": 1}  # non-ASCII letters keep their case (rule 2)
    Vocabulary.build(counts).save(tmp_path / "vocab.txt")
    Vocabulary.build(collections.Counter("Theh1"), level="char").save(tmp_path / "chars.txt")
    spec.save(tmp_path)
    encoder, twin = TextEncoder(tmp_path), TextTokenizer(tmp_path)
    text = "The THE the 1999 1066 ünï"
    ids = encoder.encode(tf.constant([text])).to_list()[0]
    assert ids == [2, 2, 2, 3, 3, 1] == twin.encode(text)
    chars = encoder.encode_chars(encoder.tokens(tf.constant([text]))).to_list()[0]
    assert chars[0] != chars[1] and chars == twin.word_chars(twin.tokens(text))


@pytest.mark.parametrize("truncate", ["tail", "head"])
@pytest.mark.parametrize("max_len", [1, 3])
def test_word_window_keeps_the_tokens_of_the_whole_text(tmp_path, truncate, max_len):
    """Rule 5's window (`word_window`) must not change a token: texts whose window edge
    falls inside a word, a `<br />`, whitespace or punctuation, against the whole split."""
    from keras_seq.contracts.tokenizer import word_window

    encoder, twin = _write_dir(tmp_path, "word", ["br", "a", "<", "/"], max_len=max_len, truncate=truncate)
    unbounded = TextTokenizer(tmp_path)
    unbounded.max_len = None
    edge = word_window(max_len)
    pieces = ["a", "<br />", "<BR   \t/>", " " * 40, "x" * 70, "!?", "<br", "r />", "word"]
    rng = np.random.default_rng(0)
    texts = []
    for offset in range(-12, 13):
        for piece in pieces:
            filler = " ".join(rng.choice(["a", "bb", "ccc", "!", "<br/>"], size=edge // 2))[: edge + offset]
            texts += [filler + piece + filler, piece * (edge // len(piece) + 2), filler[: edge // 3] + piece]
    assert _assert_same(encoder, twin, texts) == len(texts)
    for text in texts:
        assert twin.tokens(text) == twin.truncate(unbounded.tokens(text)), f"window changed {text[:60]!r}"
    long_text = "many words here " * 1_000_000  # 16 MB: the window, not the whole text, is split
    assert twin.tokens(long_text) == (["many", "words", "here"] * max_len)[:max_len] if truncate == "tail" else True


def test_twin_split_is_the_contract_patterns_on_random_text():
    # the twin splits with one str.translate; the contract says it with three regexes (rules 2-4)
    import random
    import re

    from keras_seq.contracts.tokenizer import BR_PATTERN, PUNCT_PATTERN, SPACE_PATTERN

    br, punct, space = re.compile(BR_PATTERN), re.compile(PUNCT_PATTERN), re.compile(SPACE_PATTERN)
    alphabet = [chr(i) for i in range(300)] + ["\U0001f600", "\u2028", "\xa0", "<br />", "<BR/>", "\t\n "]
    rng = random.Random(0)
    for _ in range(5000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60)))
        expected = [t for t in space.sub(" ", punct.sub(r" \1 ", br.sub(" ", text))).split(" ") if t]
        assert TextTokenizer._split(text) == expected, repr(text)
