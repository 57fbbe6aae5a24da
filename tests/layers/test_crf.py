"""CRF: loss and Viterbi path against brute-force enumeration of all tag sequences."""

from __future__ import annotations

import itertools

import keras
import numpy as np
import pytest

import keras_seq

K, T = 3, 4
LENGTHS = [4, 2, 1, 3]


def _crf_and_batch(seed=0):
    rng = np.random.default_rng(seed)
    crf = keras_seq.CRF(K)
    emissions = rng.normal(size=(len(LENGTHS), T, K)).astype("float32")
    crf(emissions)
    crf.set_weights([rng.normal(size=w.shape).astype("float32") for w in crf.get_weights()])
    mask = np.arange(T)[None, :] < np.array(LENGTHS)[:, None]
    return crf, emissions, mask


def _brute_score(crf, e, tags):
    A, start, end = (np.asarray(w) for w in crf.get_weights())
    s = start[tags[0]] + end[tags[-1]] + sum(e[t, y] for t, y in enumerate(tags))
    return s + sum(A[a, b] for a, b in zip(tags[:-1], tags[1:]))


def test_nll_and_viterbi_match_brute_force_with_padding():
    crf, emissions, mask = _crf_and_batch()
    rng = np.random.default_rng(1)
    gold = rng.integers(1, K, size=(len(LENGTHS), T)) * mask
    nll = np.asarray(crf.negative_log_likelihood(emissions, gold, mask))
    paths, scores = (np.asarray(a) for a in crf.decode(emissions, mask))
    for b, length in enumerate(LENGTHS):
        e = emissions[b, :length]
        all_scores = {y: _brute_score(crf, e, y) for y in itertools.product(range(K), repeat=length)}
        log_z = np.logaddexp.reduce(np.array(list(all_scores.values())))
        expected = log_z - _brute_score(crf, e, tuple(gold[b, :length]))
        assert nll[b] == pytest.approx(expected, abs=1e-4)
        best = max(all_scores, key=all_scores.get)
        assert tuple(paths[b, :length]) == best
        assert np.all(paths[b, length:] == 0)
        assert scores[b] == pytest.approx(all_scores[best], abs=1e-4)


def test_loss_uses_tag_zero_as_padding_and_trains():
    crf, emissions, mask = _crf_and_batch(seed=2)
    gold = (np.random.default_rng(3).integers(1, K, size=mask.shape) * mask).astype("int32")
    np.testing.assert_allclose(
        np.asarray(crf.loss(gold, emissions)), np.asarray(crf.negative_log_likelihood(emissions, gold, mask)), rtol=1e-6
    )
    inputs = keras.Input((None,), dtype="int32")
    h = keras.layers.Embedding(10, 8, mask_zero=True)(inputs)
    h = keras.layers.Bidirectional(keras_seq.LSTM(8, return_sequences=True))(h)
    layer = keras_seq.CRF(K)
    model = keras.Model(inputs, layer(keras.layers.Dense(K)(h)))
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss=keras_seq.CRFLoss(layer))
    x = np.random.default_rng(4).integers(1, 10, size=(32, 6)) * (np.arange(6) < 4)
    y = np.where(x > 0, (x % 2) + 1, 0)  # tag depends on the token
    history = model.fit(x, y, epochs=15, batch_size=8, verbose=0)
    assert history.history["loss"][-1] < 0.3 * history.history["loss"][0]
    paths, _ = layer.decode(model.predict(x, verbose=0), x != 0)
    assert np.mean(np.asarray(paths)[x > 0] == y[x > 0]) > 0.95


def test_crf_bad_arguments():
    with pytest.raises(ValueError, match="num_tags"):
        keras_seq.CRF(1)
    with pytest.raises(ValueError, match="emissions"):
        keras_seq.CRF(4)(np.zeros((2, 3, 5), "float32"))


def test_a_saved_crf_tagger_loads_and_trains_on_one_token_batches(tmp_path):
    """A batch of one-token sentences of unknown length once failed in the traced train
    step (the forward algorithm ran zero steps); a model compiled with the CRF loss
    could not be loaded (the bound method in its compile config)."""
    import tensorflow as tf

    tagger = keras_seq.build_tagger(10, K, crf=True, units=4, embed_dim=4, depth=1)
    tagger.compile("adam", loss=keras_seq.tagger_loss(tagger))
    rows = [(np.array([[3], [4]]), np.array([[1], [2]])), (np.array([[3, 5, 6]]), np.array([[1, 2, 1]]))]
    data = tf.data.Dataset.from_generator(
        lambda: iter(rows),
        output_signature=(tf.TensorSpec([None, None], tf.int32), tf.TensorSpec([None, None], tf.int32)),
    )
    assert np.isfinite(tagger.fit(data, epochs=1, verbose=0).history["loss"][-1])
    tagger.save(tmp_path / "tagger.keras")
    loaded = keras.saving.load_model(tmp_path / "tagger.keras")
    np.testing.assert_allclose(loaded.predict(rows[1][0], verbose=0), tagger.predict(rows[1][0], verbose=0))
    with pytest.raises(ValueError, match="compile again"):
        loaded.fit(data, epochs=1, verbose=0)
    loaded.compile("adam", loss=keras_seq.tagger_loss(loaded))
    assert np.isfinite(loaded.fit(data, epochs=1, verbose=0).history["loss"][-1])
