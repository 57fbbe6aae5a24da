"""ContextualCharEmbedding (Flair-style contextual string embeddings): each word's features are the
character LMs' states on the sentence written out as one string, whatever the padding."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import keras_seq

SEP = 9  # the separator's id: the layer's char_vocab_size


def _layer(seed: int = 0) -> keras_seq.ContextualCharEmbedding:
    layer = keras_seq.ContextualCharEmbedding(SEP, embed_dim=4, units=5, cell="lstm")
    layer.build((None, None, None))
    rng = np.random.default_rng(seed)
    layer.set_weights([rng.normal(0, 0.6, w.shape).astype("float32") for w in layer.get_weights()])
    return layer


def _by_hand(layer, sentence: list[list[int]]) -> np.ndarray:
    """The features of one sentence's words from its string, written out here."""
    string, ends, starts = [], [], []
    for word in sentence:
        string.append(SEP)
        starts.append(len(string))
        string.extend(word)
        ends.append(len(string) - 1)
    ids = np.array([string])
    forward = np.asarray(layer.forward_lm(layer.forward_embedding(ids)))[0]
    backward = np.asarray(layer.backward_lm(layer.backward_embedding(ids[:, ::-1])))[0][::-1]
    return np.concatenate([forward[ends], backward[starts]], axis=-1)


def test_features_are_the_lms_states_at_word_ends_on_the_sentence_string():
    layer = _layer()
    sentences = [[[3, 4], [5], [6, 7, 8]], [[2, 2, 2, 2]]]
    chars = np.zeros((2, 4, 5), "int32")  # padding words and padding characters in every row
    for row, sentence in enumerate(sentences):
        for t, word in enumerate(sentence):
            chars[row, t, : len(word)] = word
    got = np.asarray(layer(chars))
    assert got.shape == (2, 4, 10)
    for row, sentence in enumerate(sentences):
        np.testing.assert_allclose(got[row, : len(sentence)], _by_hand(layer, sentence), atol=1e-5)
        np.testing.assert_array_equal(got[row, len(sentence) :], 0.0)  # padding words
    # The same sentences in a wider batch (more padding of both kinds) give the same answers.
    wider = np.zeros((2, 6, 8), "int32")
    wider[:, :4, :5] = chars
    np.testing.assert_allclose(np.asarray(layer(wider))[:, :4], got, atol=1e-5)


def test_each_word_sees_the_whole_sentence():
    layer = _layer(1)
    a = np.array([[[3, 4], [5, 6], [7, 0]]])
    b = a.copy()
    b[0, 2, 0] = 8  # change the last word only
    first, second = np.asarray(layer(a)), np.asarray(layer(b))
    units = layer.units
    np.testing.assert_allclose(first[0, 0, :units], second[0, 0, :units], atol=1e-6)  # forward: the past only
    assert not np.allclose(first[0, 0, units:], second[0, 0, units:])  # backward: reads the later word


def test_mask_config_and_saving(tmp_path):
    layer = _layer()
    chars = np.array([[[3, 4], [0, 0]]])
    np.testing.assert_array_equal(np.asarray(layer.compute_mask(chars)), [[True, False]])
    clone = keras_seq.ContextualCharEmbedding.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    ids = keras.Input((None, None), dtype="int32")
    model = keras.Model(ids, layer(ids))
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(np.asarray(loaded(chars)), np.asarray(model(chars)), atol=1e-6)
    with pytest.raises(ValueError, match="cell"):
        keras_seq.ContextualCharEmbedding(5, cell="transformer")


def test_a_tagger_with_contextual_characters_trains_in_fit():
    # A word's tag is the first letter of the next word (each word unknown to the word embedding).
    keras.utils.set_random_seed(1)
    rng = np.random.default_rng(0)
    ids = np.ones((96, 5), "int32")
    chars = rng.integers(2, 8, size=(96, 5, 3)).astype("int32")
    following = np.concatenate([chars[:, 1:, 0], np.full((96, 1), 2)], axis=1)
    tags = np.where(following % 2 == 0, 2, 3)
    model = keras_seq.build_tagger(
        4, 4, cell="gru", embed_dim=2, units=8, depth=1, char_vocab_size=9,
        char_embed_dim=2, char_units=2, char_lm_units=8, char_lm_embed_dim=4, char_lm_cell="gru",
    )  # fmt: skip
    model.compile(optimizer=keras.optimizers.Adam(0.02), loss=keras_seq.tagger_loss(model))
    start = [w.copy() for w in model.get_layer("char_context").get_weights()]
    losses = model.fit((ids, chars), tags, epochs=12, batch_size=16, verbose=0).history["loss"]
    assert losses[-1] < 0.7 * losses[0]
    # The gradient reaches every weight of both character LMs (build_tagger leaves them trainable).
    for before, after in zip(start, model.get_layer("char_context").get_weights()):
        assert not np.array_equal(before, after)
    assert keras_seq.layer_groups(model)[0] == ["embedding", "char_words", "char_context"]


def test_load_char_lm_fills_one_half_and_matches_characters():
    lm_tokens = ["<PAD>", "<UNK>", " ", "a", "b", "c"]
    lm = keras_seq.build_language_model(len(lm_tokens), cell="lstm", embed_dim=4, units=5, depth=1)
    lm.set_weights([np.random.default_rng(2).normal(0, 1, w.shape).astype("float32") for w in lm.get_weights()])
    tagger_chars = ["<PAD>", "<UNK>", "b", "a", "z"]
    layer = keras_seq.ContextualCharEmbedding(len(tagger_chars), embed_dim=4, units=5)
    layer.build((None, None, None))
    untouched = [w.copy() for w in layer.backward_lm.get_weights()]
    report = keras_seq.load_char_lm(layer, lm, direction="forward", source_tokens=lm_tokens, target_tokens=tagger_chars)
    table = lm.get_layer("embedding").get_weights()[0]
    rows = layer.forward_embedding.get_weights()[0]
    # b, a from their own rows; z (unseen by the LM) reads as its <UNK>; the separator is its space.
    np.testing.assert_array_equal(rows[[2, 3, 4, 5]], table[[4, 3, 1, 2]])
    for mine, theirs in zip(layer.forward_lm.get_weights(), lm.get_layer("lstm_0").get_weights()):
        np.testing.assert_array_equal(mine, theirs)
    for before, after in zip(untouched, layer.backward_lm.get_weights()):
        np.testing.assert_array_equal(before, after)
    assert report.char_lms == ["forward"] and len(report.loaded) == 2 and not report.not_loaded
    deep = keras_seq.build_language_model(len(lm_tokens), cell="lstm", embed_dim=4, units=5, depth=2)
    with pytest.raises(ValueError, match="one-layer"):
        keras_seq.load_char_lm(layer, deep, source_tokens=lm_tokens, target_tokens=tagger_chars)
    wide = keras_seq.build_language_model(len(lm_tokens), cell="lstm", embed_dim=6, units=5, depth=1)
    with pytest.raises(ValueError, match="char_lm_embed_dim"):
        keras_seq.load_char_lm(layer, wide, source_tokens=lm_tokens, target_tokens=tagger_chars)
    gru = keras_seq.build_language_model(len(lm_tokens), cell="gru", embed_dim=4, units=5, depth=1)
    before = [w.copy() for w in layer.backward_embedding.get_weights()]
    with pytest.raises(ValueError, match=r"\(backward\) <- gru_0: GRU .* does not fit .*char_lm_cell") as refused:
        keras_seq.load_char_lm(layer, gru, direction="backward", source_tokens=lm_tokens, target_tokens=tagger_chars)
    assert "\n" not in str(refused.value)
    np.testing.assert_array_equal(layer.backward_embedding.get_weights()[0], before[0])  # nothing half-loaded
    no_space = keras_seq.build_language_model(5, cell="lstm", embed_dim=4, units=5, depth=1)
    with pytest.raises(ValueError, match="no space"):
        keras_seq.load_char_lm(layer, no_space, source_tokens=lm_tokens[:2] + lm_tokens[3:], target_tokens=tagger_chars)
