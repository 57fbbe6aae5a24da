"""Additive (Bahdanau) and multiplicative (Luong) attention against NumPy, with padded memories."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import keras_seq

B, L, S, Q, M = 3, 4, 5, 6, 7
LENGTHS = np.array([5, 2, 0])  # the last memory has no valid step


def _batch(query_features=Q):
    rng = np.random.default_rng(0)
    query = rng.normal(size=(B, L, query_features)).astype("float32")
    memory = rng.normal(size=(B, S, M)).astype("float32")
    return query, memory, np.arange(S)[None] < LENGTHS[:, None]


def _softmax_context(scores, memory, mask):
    weights = np.zeros_like(scores)
    for b in range(B):
        if mask[b].any():
            e = np.exp(scores[b][:, mask[b]] - scores[b][:, mask[b]].max(-1, keepdims=True))
            weights[b][:, mask[b]] = e / e.sum(-1, keepdims=True)
    return weights @ memory, weights


def _check(layer, reference, query, memory, mask):
    context, weights = layer(query, memory, memory_mask=mask)
    want_context, want_weights = _softmax_context(reference(query, memory), memory, mask)
    np.testing.assert_allclose(np.asarray(weights), want_weights, atol=1e-5)
    np.testing.assert_allclose(np.asarray(context), want_context, atol=1e-5)
    one_context, one_weights = layer(query[:, 1], memory, memory_mask=mask)  # one decoder step: (B, Q)
    np.testing.assert_allclose(np.asarray(one_weights), want_weights[:, 1], atol=1e-5)
    np.testing.assert_allclose(np.asarray(one_context), want_context[:, 1], atol=1e-5)


def test_additive_attention_matches_numpy():
    query, memory, mask = _batch()
    layer = keras_seq.AdditiveAttention(8)
    layer(query, memory)
    Wq, Wm, b, v = (np.asarray(w) for w in layer.get_weights())
    reference = lambda q, m: np.tanh((q @ Wq)[:, :, None] + (m @ Wm + b)[:, None]) @ v  # noqa: E731
    _check(layer, reference, query, memory, mask)


@pytest.mark.parametrize("score,scale", [("dot", False), ("general", False), ("general", True)])
def test_multiplicative_attention_matches_numpy(score, scale):
    query, memory, mask = _batch(M if score == "dot" else Q)
    layer = keras_seq.MultiplicativeAttention(score, scale=scale)
    layer(query, memory)
    W = np.asarray(layer.kernel) if score == "general" else np.eye(M, dtype="float32")
    reference = lambda q, m: (q @ W) @ m.transpose(0, 2, 1) / (np.sqrt(M) if scale else 1)  # noqa: E731
    _check(layer, reference, query, memory, mask)


def test_dot_attention_equals_keras_attention_layer():
    query, memory, mask = _batch(M)
    mask[2, 0] = True  # keras' own layer answers uniform weights for an all-padded row
    context, weights = keras_seq.MultiplicativeAttention("dot")(query, memory, memory_mask=mask)
    theirs, their_weights = keras.layers.Attention()([query, memory], mask=[None, mask], return_attention_scores=True)
    np.testing.assert_allclose(np.asarray(context), np.asarray(theirs), atol=1e-5)
    np.testing.assert_allclose(np.asarray(weights), np.asarray(their_weights), atol=1e-5)


def test_memory_mask_from_keras_masking_gradients_and_saving(tmp_path):
    source = keras.Input((None,), dtype="int32")
    target = keras.Input((None, Q))
    memory = keras.layers.Embedding(20, M, mask_zero=True)(source)  # carries the padding mask
    context, weights = keras_seq.AdditiveAttention(4, name="attention")(target, memory)
    model = keras.Model([source, target], [context, weights])
    ids = np.array([[3, 4, 0, 0], [0, 0, 0, 0]])
    steps = np.ones((2, 3, Q), "float32")
    got_context, got_weights = model([ids, steps])
    assert np.asarray(got_weights)[0, :, 2:].max() == 0.0 and np.allclose(np.asarray(got_weights)[0].sum(-1), 1)
    assert np.asarray(got_weights)[1].max() == 0.0 and np.asarray(got_context)[1].max() == 0.0  # empty source
    import tensorflow as tf

    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(model([ids, steps])[0])
    gradients = tape.gradient(loss, model.trainable_variables)
    assert all(np.isfinite(tf.convert_to_tensor(g).numpy()).all() for g in gradients)
    model.save(tmp_path / "m.keras")
    again = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(np.asarray(again([ids, steps])[1]), np.asarray(got_weights), atol=1e-6)


def test_bad_arguments():
    with pytest.raises(ValueError, match="units"):
        keras_seq.AdditiveAttention(0)
    with pytest.raises(ValueError, match="'dot' or 'general'"):
        keras_seq.MultiplicativeAttention("concat")
    with pytest.raises(ValueError, match="same size"):
        keras_seq.MultiplicativeAttention("dot")(np.ones((1, 3), "float32"), np.ones((1, 2, 4), "float32"))
    with pytest.raises(ValueError, match="rank 3"):
        keras_seq.AdditiveAttention(2)(np.ones((1, 3), "float32"), np.ones((1, 4), "float32"))
