"""LabelSmoothedCrossentropy: the one-hot smoothed loss on ids, masks as Keras' own, saved with a model."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import keras_seq
from tests.helpers import REPO


@pytest.mark.parametrize("from_logits", [True, False])
@pytest.mark.parametrize("smoothing", [0.0, 0.1, 0.3])
def test_equals_keras_one_hot_smoothing(from_logits, smoothing):
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(4, 5, 7)).astype("float32")
    ids = rng.integers(0, 7, size=(4, 5))
    y_pred = logits if from_logits else np.asarray(keras.ops.softmax(logits))
    reference = keras.losses.CategoricalCrossentropy(from_logits=from_logits, label_smoothing=smoothing)
    ours = keras_seq.LabelSmoothedCrossentropy(smoothing, from_logits=from_logits)
    np.testing.assert_allclose(float(ours(ids, y_pred)), float(reference(np.eye(7)[ids], y_pred)), rtol=1e-5)


def _masked_model():
    inputs = keras.Input((None,), dtype="int32")
    x = keras.layers.Embedding(9, 6, mask_zero=True)(inputs)
    x = keras_seq.GRU(5, return_sequences=True)(x)
    return keras.Model(inputs, keras.layers.Dense(4)(x))


def test_zero_smoothing_equals_sparse_crossentropy_under_a_mask():
    model = _masked_model()
    ids = np.array([[3, 4, 5, 0, 0], [1, 2, 0, 0, 0]])
    targets = np.array([[1, 2, 3, 1, 1], [2, 2, 3, 3, 3]])  # targets at padded steps must not count
    model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    expected = model.evaluate(ids, targets, verbose=0)
    model.compile(loss=keras_seq.LabelSmoothedCrossentropy(0.0, from_logits=True))
    assert model.evaluate(ids, targets, verbose=0) == pytest.approx(expected, rel=1e-6)
    changed = targets.copy()
    changed[:, 3:] = 0
    assert model.evaluate(ids, changed, verbose=0) == pytest.approx(expected, rel=1e-6)


def test_saved_with_the_model_and_rejects_a_bad_value(tmp_path):
    model = _masked_model()
    model.compile(loss=keras_seq.LabelSmoothedCrossentropy(0.2, from_logits=True))
    model.save(tmp_path / "m.keras")
    loss = keras.saving.load_model(tmp_path / "m.keras").loss
    assert isinstance(loss, keras_seq.LabelSmoothedCrossentropy)
    assert (loss.label_smoothing, loss.from_logits) == (0.2, True)
    with pytest.raises(ValueError, match="label_smoothing"):
        keras_seq.LabelSmoothedCrossentropy(1.0)


def test_the_config_key_reaches_the_task_loss_and_refuses_a_crf():

    from keras_seq.pipelines.config import load_config
    from keras_seq.tasks import get_task

    configs = REPO / "pipelines" / "configs"

    config = load_config(configs / "g2p_cmudict.toml", ["train.label_smoothing=0.1"])
    loss = get_task("seq2seq").loss(None, config["train"]["label_smoothing"])
    assert isinstance(loss, keras_seq.LabelSmoothedCrossentropy) and loss.from_logits
    with pytest.raises(ValueError, match="train.label_smoothing"):
        load_config(configs / "conll2003_ner_crf.toml", ["train.label_smoothing=0.1"])
    with pytest.raises(ValueError, match="train.label_smoothing"):
        load_config(configs / "g2p_cmudict.toml", ["train.label_smoothing=1.5"])
