"""The attention decoder: teacher forcing equals step-by-step decoding for every cell and
attention, masks on both sides, saving, and learning a small transduction."""
from __future__ import annotations

import itertools

import keras
import numpy as np
import pytest

import keras_seq

B, L, S, E, M, H = 3, 4, 5, 3, 6, 6
CASES = list(itertools.product(["lstm", "gru", "elman"], ["luong", "luong_dot", "bahdanau", None]))


def _inputs():
    rng = np.random.default_rng(0)
    targets = rng.normal(size=(B, L, E)).astype("float32")
    memory = rng.normal(size=(B, S, M)).astype("float32")
    memory_mask = np.arange(S)[None] < np.array([5, 3, 1])[:, None]
    return targets, memory, memory_mask


@pytest.mark.parametrize("cell,attention", CASES)
def test_teacher_forcing_equals_step_by_step(cell, attention):
    targets, memory, memory_mask = _inputs()
    decoder = keras_seq.AttentionDecoder(H, cell=cell, attention=attention)
    states = [np.random.default_rng(1).normal(size=(B, H)).astype("float32") for _ in decoder.state_size]
    outputs, weights, *final = decoder(targets, memory, initial_state=states, memory_mask=memory_mask)
    carry = decoder.initial_carry(states)
    keys = decoder.prepare_memory(memory)
    for t in range(L):
        step_output, step_weights, carry = decoder.step(targets[:, t], carry, memory, memory_mask, keys)
        np.testing.assert_allclose(np.asarray(step_output), np.asarray(outputs)[:, t], atol=1e-5)
        if attention is None:
            assert step_weights is None and np.asarray(weights).max() == 0.0
        else:
            np.testing.assert_allclose(np.asarray(step_weights), np.asarray(weights)[:, t], atol=1e-6)
    for got, want in zip(final, carry):
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=1e-5)
    if attention is not None:
        w = np.asarray(weights)
        assert w[~np.broadcast_to(memory_mask[:, None], w.shape)].max() == 0.0  # padded source steps
        np.testing.assert_allclose(w.sum(-1), 1.0, atol=1e-5)


def test_padded_target_steps_keep_the_state_and_output_zeros():
    targets, memory, memory_mask = _inputs()
    decoder = keras_seq.AttentionDecoder(H, cell="lstm", attention="luong")
    target_mask = np.arange(L)[None] < np.array([4, 2, 3])[:, None]
    outputs, _, *final = decoder(targets, memory, memory_mask=memory_mask, mask=target_mask)
    assert np.asarray(outputs)[1, 2:].max() == 0.0 and np.asarray(outputs)[2, 3:].max() == 0.0
    _, _, *prefix = decoder(targets[1:2, :2], memory[1:2], memory_mask=memory_mask[1:2])
    for got, want in zip(final, prefix):
        np.testing.assert_allclose(np.asarray(got)[1:2], np.asarray(want), atol=1e-5)


def test_learns_to_reverse_and_saves(tmp_path):
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    source = rng.integers(1, 8, size=(2000, 5))
    target = source[:, ::-1]
    bos = np.full((2000, 1), 8)
    model = keras_seq.build_seq2seq(8, 9, cell="gru", units=16, embed_dim=16, attention="luong")  # 8 = <BOS>
    alignment = keras_seq.attention_model(model)
    model.compile(keras.optimizers.Adam(0.02),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    history = model.fit([source, np.concatenate([bos, target[:, :-1]], 1)], target, batch_size=64, epochs=4,
                        verbose=0)
    assert history.history["accuracy"][-1] > 0.95, history.history
    weights = np.asarray(alignment([source[:8], np.concatenate([bos, target[:, :-1]], 1)[:8]]))
    assert (weights.argmax(-1) == np.arange(5)[::-1]).mean() > 0.8  # it attends to the mirrored position
    model.save(tmp_path / "reverser.keras")
    again = keras.saving.load_model(tmp_path / "reverser.keras")
    probe = [source[:4], np.concatenate([bos, target[:, :-1]], 1)[:4]]
    np.testing.assert_allclose(np.asarray(again(probe)), np.asarray(model(probe)), atol=1e-5)


def test_bad_arguments():
    with pytest.raises(ValueError, match="`cell`"):
        keras_seq.AttentionDecoder(4, cell="rnn")
    with pytest.raises(ValueError, match="`attention`"):
        keras_seq.AttentionDecoder(4, attention="concat")
    targets, memory, _ = _inputs()
    with pytest.raises(ValueError, match="same size"):
        keras_seq.AttentionDecoder(4, attention="luong_dot")(targets, memory)


@pytest.mark.parametrize("cell,attention,bidirectional", [("lstm", "bahdanau", True), ("elman", None, False),
                                                          ("gru", "luong_dot", False)])
def test_build_seq2seq_variants_and_masked_targets(cell, attention, bidirectional):
    model = keras_seq.build_seq2seq(10, 7, cell=cell, units=6, embed_dim=4, encoder_depth=2, attention=attention,
                                    bidirectional_encoder=bidirectional)
    source = np.array([[3, 4, 5, 0], [6, 0, 0, 0]])
    target_in = np.array([[1, 2, 3], [1, 0, 0]])
    logits = np.asarray(model([source, target_in]))
    assert logits.shape == (2, 3, 7)
    longer = np.asarray(model([np.pad(source, [[0, 0], [0, 3]]), np.pad(target_in, [[0, 0], [0, 2]])]))
    np.testing.assert_allclose(longer[:, :3][target_in > 0], logits[target_in > 0], atol=1e-5)  # padding-invariant
    with pytest.raises(ValueError, match="encoder_depth"):
        keras_seq.build_seq2seq(10, 7, encoder_depth=0)
