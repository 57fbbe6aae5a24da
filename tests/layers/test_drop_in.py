"""A true drop-in: keras_seq.LSTM / GRU / Elman take every constructor argument that Keras' LSTM / GRU /
SimpleRNN take (read from Keras' own signatures, so the next Keras pin shows a new one), give the same
outputs with the same weights, and their configs load in both directions."""

from __future__ import annotations

import inspect

import keras
import numpy as np
import pytest

import keras_seq

PAIRS = [
    (keras_seq.LSTM, keras.layers.LSTM),
    (keras_seq.GRU, keras.layers.GRU),
    (keras_seq.Elman, keras.layers.SimpleRNN),
]

#: a value other than the default for each argument (outputs must still agree with Keras')
SAMPLES = {
    "activation": "relu",
    "recurrent_activation": "hard_sigmoid",
    "use_bias": False,
    "kernel_initializer": "glorot_normal",
    "recurrent_initializer": "identity",
    "bias_initializer": "ones",
    "unit_forget_bias": False,
    "kernel_regularizer": "l2",
    "recurrent_regularizer": "l1",
    "bias_regularizer": "l2",
    "activity_regularizer": "l2",
    "kernel_constraint": "non_neg",
    "recurrent_constraint": "max_norm",
    "bias_constraint": "unit_norm",
    "dropout": 0.3,
    "recurrent_dropout": 0.2,
    "seed": 7,
    "return_sequences": True,
    "return_state": True,
    "go_backwards": True,
    "stateful": True,
    "unroll": True,
    "use_cudnn": False,
    "reset_after": False,
}
#: arguments Keras takes through **kwargs (popped by its layers, or the base Layer's)
KWARGS = {"implementation": 1, "name": "rnn", "trainable": False, "dtype": "float32", "zero_output_for_mask": True}


def _keras_arguments(theirs) -> list[str]:
    names = [p for p in inspect.signature(theirs.__init__).parameters if p not in ("self", "units", "kwargs")]
    unknown = [n for n in names if n not in SAMPLES]
    assert not unknown, f"Keras' {theirs.__name__} has arguments this test has no sample for: {unknown}"
    return names


def _accepted_kwargs(theirs) -> dict:
    out = {}
    for name, value in KWARGS.items():
        try:
            theirs(3, **{name: value})
        except (TypeError, ValueError):
            continue  # Keras refuses it too (SimpleRNN has no `implementation`)
        out[name] = value
    return out


@pytest.mark.parametrize("ours, theirs", PAIRS, ids=[p[0].__name__ for p in PAIRS])
def test_every_keras_argument_is_accepted_with_the_same_outputs(ours, theirs):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 5, 3)).astype("float32")
    cases = [{name: SAMPLES[name]} for name in _keras_arguments(theirs)] + [
        {name: value} for name, value in _accepted_kwargs(theirs).items()
    ]
    assert len(cases) >= 20
    for arguments in cases:
        a, b = ours(4, **arguments), theirs(4, **arguments)  # raises here if ours refuses an argument
        a(x), b(x)
        b.set_weights(a.get_weights())
        if arguments.get("stateful"):  # both start again from zero states, under the same weights
            a.reset_state(), b.reset_state()
        want, got = b(x, training=False), a(x, training=False)
        for w, g in zip(want if isinstance(want, list) else [want], got if isinstance(got, list) else [got]):
            np.testing.assert_allclose(np.asarray(g), np.asarray(w), atol=1e-5, err_msg=str(arguments))
        if "implementation" in arguments:
            assert a.cell.implementation == b.cell.implementation == a.implementation == 1


@pytest.mark.parametrize("ours, theirs", PAIRS, ids=[p[0].__name__ for p in PAIRS])
def test_configs_load_in_both_directions(ours, theirs):
    x = np.random.default_rng(1).normal(size=(2, 4, 3)).astype("float32")
    keras_layer = theirs(5, return_sequences=True, dropout=0.1, go_backwards=True)
    keras_layer(x)
    from_keras = ours.from_config(keras_layer.get_config())
    from_keras(x)
    from_keras.set_weights(keras_layer.get_weights())
    np.testing.assert_allclose(np.asarray(from_keras(x)), np.asarray(keras_layer(x)), atol=1e-5)

    our_layer = ours(5, return_sequences=True, recurrent_dropout=0.1)
    our_layer(x)
    to_keras = theirs.from_config(our_layer.get_config())
    to_keras(x)
    to_keras.set_weights(our_layer.get_weights())
    np.testing.assert_allclose(np.asarray(to_keras(x)), np.asarray(our_layer(x)), atol=1e-5)
