"""Task models (classifier, tagger with and without CRF, language model) and decoding."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import keras_seq
from keras_seq import decoding


def _ids(n=48, t=10, vocab=12, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.integers(2, vocab, size=(n, t))
    lengths = rng.integers(3, t + 1, size=n)
    return x * (np.arange(t)[None] < lengths[:, None])


# Every cell and every pooling once (the two choices do not interact: pooling reads the top
# layer's outputs, whatever the cell); the full 3 x 4 grid cost a minute of CI for nothing more.
@pytest.mark.parametrize("cell,pooling", [("elman", "max"), ("gru", "final"), ("lstm", "last"), ("gru", "mean")])
def test_classifier_builds_and_learns(cell, pooling):
    x = _ids()
    y = (x[:, 0] > 6).astype("int32")  # depends on the first token: memory needed for "last"
    model = keras_seq.build_classifier(12, 2, cell=cell, embed_dim=8, units=8, pooling=pooling, depth=2)
    model.compile(optimizer=keras.optimizers.Adam(0.02), loss="sparse_categorical_crossentropy")
    history = model.fit(x, y, epochs=4, batch_size=32, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    probs = np.asarray(model(x[:4], training=False))  # eager calls: no predict function to trace
    np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-5)
    # Padding does not change the answer.
    padded = np.concatenate([x[:4], np.zeros((4, 5), x.dtype)], axis=1)
    np.testing.assert_allclose(np.asarray(model(padded, training=False)), probs, atol=1e-5)


@pytest.mark.parametrize("crf", [False, True])
def test_tagger_learns_token_dependent_tags(crf):
    x = _ids(n=64)
    y = np.where(x > 0, np.where(x % 3 == 0, 2, 3), 0)
    model = keras_seq.build_tagger(12, 4, cell="gru", embed_dim=8, units=8, depth=1, crf=crf)
    model.compile(optimizer=keras.optimizers.Adam(0.03), loss=keras_seq.tagger_loss(model))
    model.fit(x, y, epochs=12, batch_size=16, verbose=0)
    out = model.predict(x, verbose=0)
    if crf:
        tags, _ = model.get_layer("crf").decode(out, x != 0)
        tags = np.asarray(tags)
    else:
        tags = out.argmax(-1)
    assert np.mean(tags[x > 0] == y[x > 0]) > 0.95


def test_bad_model_arguments():
    with pytest.raises(ValueError, match="cell"):
        keras_seq.build_classifier(10, 2, cell="transformer")
    with pytest.raises(ValueError, match="pooling"):
        keras_seq.build_classifier(10, 2, pooling="median")
    with pytest.raises(ValueError, match="depth"):
        keras_seq.build_tagger(10, 3, depth=0)
    with pytest.raises(ValueError, match="embedding_matrix"):
        keras_seq.build_classifier(10, 2, embed_dim=4, embedding_matrix=np.zeros((9, 4)))
    with pytest.raises(ValueError, match="batch_size"):
        keras_seq.build_language_model(10, stateful=True)


def _tiny_lm(vocab=4, seed=0):
    keras.utils.set_random_seed(seed)
    model = keras_seq.build_language_model(vocab, cell="lstm", embed_dim=3, units=5, depth=2)
    model(np.zeros((1, 2), "int32"))
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(scale=1.5, size=w.shape).astype("float32") for w in model.get_weights()])
    return model


def test_stepper_matches_the_full_model():
    model = _tiny_lm()
    stepper = keras_seq.LanguageModelStepper(model)
    ids = np.array([[1, 2, 3, 0, 2], [3, 3, 1, 2, 0]])
    full = np.asarray(model(ids))
    states = stepper.initial_states(2)
    for t in range(ids.shape[1]):
        log_probs, states = stepper.step(ids[:, t], states)
        expected = full[:, t] - np.log(np.exp(full[:, t]).sum(-1, keepdims=True))
        np.testing.assert_allclose(log_probs, expected, atol=1e-5)


def test_greedy_and_seeded_sampling():
    stepper = keras_seq.LanguageModelStepper(_tiny_lm())
    lp, st = stepper.run(np.array([[1, 2]]), stepper.initial_states(1))
    out = decoding.greedy(stepper.step, lp, st, 6)
    # Greedy = at each step the argmax given the greedy prefix.
    lp2, st2 = lp, st
    for token in out[0]:
        assert token == lp2.argmax()
        lp2, st2 = stepper.step(np.array([token]), st2)
    a = decoding.sample(stepper.step, lp, st, 8, temperature=0.8, seed=7)
    b = decoding.sample(stepper.step, lp, st, 8, temperature=0.8, seed=7)
    np.testing.assert_array_equal(a, b)
    cold = decoding.sample(stepper.step, lp, st, 6, temperature=1e-4, seed=1)
    np.testing.assert_array_equal(cold, out)  # temperature -> 0 is greedy
    with pytest.raises(ValueError, match="temperature"):
        decoding.sample(stepper.step, lp, st, 3, temperature=0)


@pytest.mark.parametrize("eos_id, alpha", [(None, 0.0), (0, 1.0), (0, 0.0), (3, 0.7)])
def test_beam_search_equals_exhaustive_search(eos_id, alpha):
    vocab, length = 4, 4
    stepper = keras_seq.LanguageModelStepper(_tiny_lm(vocab, seed=3))
    lp, st = stepper.run(np.array([[1]]), stepper.initial_states(1))
    exact = decoding.exhaustive_search(stepper.step, lp, st, length, eos_id=eos_id, alpha=alpha)
    wide = decoding.beam_search(stepper.step, lp, st, length, beam_width=vocab**length, eos_id=eos_id, alpha=alpha)
    assert wide[0].tokens == exact.tokens
    assert wide[0].score == pytest.approx(exact.score, abs=1e-6)
    narrow = decoding.beam_search(stepper.step, lp, st, length, beam_width=1)
    greedy = decoding.greedy(stepper.step, lp, st, length)[0]
    assert narrow[0].tokens == tuple(greedy)
    # Scores are the model's log-probabilities.
    total, lp2, st2 = 0.0, lp, st
    for token in exact.tokens:
        total += lp2[0, token]
        lp2, st2 = stepper.step(np.array([token]), st2)
    assert exact.log_prob == pytest.approx(total, abs=1e-6)


def test_stateful_language_model_carries_state_across_windows():
    model = keras_seq.build_language_model(6, cell="gru", embed_dim=4, units=5, depth=1, batch_size=2, stateful=True)
    ids = np.random.default_rng(0).integers(0, 6, size=(2, 8))
    whole = keras_seq.build_language_model(6, cell="gru", embed_dim=4, units=5, depth=1)
    whole(ids)
    model(ids[:, :4])
    model.set_weights(whole.get_weights())
    for layer in model.layers:
        if getattr(layer, "stateful", False):
            layer.reset_state()
    first, second = np.asarray(model(ids[:, :4])), np.asarray(model(ids[:, 4:]))
    np.testing.assert_allclose(np.concatenate([first, second], 1), np.asarray(whole(ids)), atol=1e-5)


def test_character_word_encoder_shapes_and_padding():
    layer = keras_seq.CharacterWordEncoder(20, embed_dim=4, units=3)
    chars = np.array([[[3, 4, 5], [6, 0, 0], [0, 0, 0]]])
    out = np.asarray(layer(chars))
    assert out.shape == (1, 3, 6)
    np.testing.assert_array_equal(out[0, 2], 0.0)  # a padding word
    assert not np.allclose(out[0, 0], out[0, 1])
    padded = np.concatenate([chars, np.zeros((1, 3, 2), int)], axis=2)  # more char padding: same answer
    np.testing.assert_allclose(np.asarray(layer(padded)), out, atol=1e-6)
    clone = keras_seq.CharacterWordEncoder.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()


def test_char_aware_tagger_learns_from_spelling():
    rng = np.random.default_rng(0)
    ids = np.ones((64, 6), "int32")  # every word unknown: only the characters tell the tag
    chars = rng.integers(2, 10, size=(64, 6, 4))
    tags = np.where(chars[:, :, 0] % 2 == 0, 2, 3)
    model = keras_seq.build_tagger(
        12, 4, cell="gru", embed_dim=4, units=8, depth=1, char_vocab_size=10, char_embed_dim=8, char_units=8
    )
    model.compile(optimizer=keras.optimizers.Adam(0.02), loss=keras_seq.tagger_loss(model))
    model.fit((ids, chars), tags, epochs=15, batch_size=16, verbose=0)
    assert np.mean(model.predict((ids, chars), verbose=0).argmax(-1) == tags) > 0.95


def test_char_aware_tagger_ignores_batch_padding():
    # Regression: the character encoder's mask once read as "all valid", so the
    # word-level bi-LSTM ran over padding words and answers depended on the batch.
    rng = np.random.default_rng(1)
    model = keras_seq.build_tagger(
        30, 4, cell="lstm", embed_dim=4, units=5, depth=1, char_vocab_size=10, char_embed_dim=3, char_units=3
    )
    model.set_weights([rng.normal(0, 0.5, w.shape).astype("float32") for w in model.get_weights()])
    ids = rng.integers(1, 30, size=(1, 4)).astype("int32")
    chars = rng.integers(1, 10, size=(1, 4, 3)).astype("int32")
    alone = np.asarray(model((ids, chars)))
    padded_ids = np.concatenate([ids, np.zeros((1, 3), "int32")], axis=1)
    padded_chars = np.concatenate([chars, np.zeros((1, 3, 3), "int32")], axis=1)
    np.testing.assert_allclose(np.asarray(model((padded_ids, padded_chars)))[:, :4], alone, atol=1e-6)
