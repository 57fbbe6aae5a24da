"""SequencePooling respects the mask for every mode."""

import numpy as np
import pytest

import keras_seq


def _batch():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 5, 4)).astype("float32")
    mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [0, 0, 0, 0, 0]], bool)
    x[~mask] = 100.0  # padding garbage must not leak into the pooled value
    return x, mask


@pytest.mark.parametrize("mode", ["last", "mean", "max"])
def test_pooling_matches_numpy_over_valid_steps(mode):
    x, mask = _batch()
    out = np.asarray(keras_seq.SequencePooling(mode)(x, mask=mask))
    for b in range(2):
        valid = x[b][mask[b]]
        expected = {"last": valid[-1], "mean": valid.mean(0), "max": valid.max(0)}[mode]
        np.testing.assert_allclose(out[b], expected, rtol=1e-6)
    np.testing.assert_array_equal(out[2], 0.0)  # nothing valid -> zeros


def test_pooling_without_mask_uses_all_steps():
    x, _ = _batch()
    np.testing.assert_allclose(np.asarray(keras_seq.SequencePooling("mean")(x)), x.mean(1), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(keras_seq.SequencePooling("last")(x)), x[:, -1], rtol=1e-6)


def test_pooling_rejects_wrong_rank():
    with pytest.raises(ValueError, match="rank 3"):
        keras_seq.SequencePooling("max")(np.zeros((2, 3), "float32"))
