"""Elman / GRU / LSTM layers: parity with Keras' built-ins, gradients, masks, config, save/load."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_seq
from tests.helpers import run_python

B, T, D, U = 4, 9, 5, 6
LENGTHS = np.array([9, 4, 1, 6])

# (ours, reference, extra kwargs) -- every cell and both GRU variants.
CASES = {
    "elman": (keras_seq.Elman, keras.layers.SimpleRNN, {}),
    "elman_relu": (keras_seq.Elman, keras.layers.SimpleRNN, {"activation": "relu"}),
    "gru_reset_after": (keras_seq.GRU, keras.layers.GRU, {"reset_after": True}),
    "gru_reset_before": (keras_seq.GRU, keras.layers.GRU, {"reset_after": False}),
    "lstm": (keras_seq.LSTM, keras.layers.LSTM, {}),
}


def padded_batch(seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(B, T, D)).astype("float32")
    mask = np.arange(T)[None, :] < LENGTHS[:, None]
    x[~mask] = 0.0
    return x, mask


def randomize(layer, seed: int = 1) -> None:
    """Non-trivial weights (biases too), so that parity covers every term."""
    rng = np.random.default_rng(seed)
    layer.set_weights([rng.normal(scale=0.4, size=w.shape).astype("float32") for w in layer.get_weights()])


def max_diff(a, b) -> float:
    a = a if isinstance(a, (list, tuple)) else [a]
    b = b if isinstance(b, (list, tuple)) else [b]
    assert len(a) == len(b)
    return max(float(np.max(np.abs(np.asarray(x) - np.asarray(y)))) for x, y in zip(a, b))


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("use_mask", [False, True])
def test_parity_with_keras_builtin(case, go_backwards, use_mask):
    ours_cls, ref_cls, extra = CASES[case]
    kwargs = dict(return_sequences=True, return_state=True, go_backwards=go_backwards, **extra)
    ours, ref = ours_cls(U, **kwargs), ref_cls(U, **kwargs)
    x, mask = padded_batch()
    m = mask if use_mask else None
    ref(x, mask=m)
    ours(x, mask=m)
    randomize(ref)
    ours.set_weights(ref.get_weights())
    assert [w.shape for w in ours.get_weights()] == [w.shape for w in ref.get_weights()]
    assert max_diff(ours(x, mask=m), ref(x, mask=m)) <= 1e-5

    # Last output only (the pooled form most classifiers use).
    ours_last, ref_last = (
        ours_cls(U, go_backwards=go_backwards, **extra),
        ref_cls(U, go_backwards=go_backwards, **extra),
    )
    ours_last(x, mask=m)
    ref_last(x, mask=m)
    ours_last.set_weights(ref.get_weights())
    ref_last.set_weights(ref.get_weights())
    assert max_diff(ours_last(x, mask=m), ref_last(x, mask=m)) <= 1e-5


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("return_sequences", [False, True])
def test_parity_inside_bidirectional(case, return_sequences):
    ours_cls, ref_cls, extra = CASES[case]
    x, mask = padded_batch()
    ours = keras.layers.Bidirectional(ours_cls(U, return_sequences=return_sequences, **extra))
    ref = keras.layers.Bidirectional(ref_cls(U, return_sequences=return_sequences, **extra))
    ours(x, mask=mask)
    ref(x, mask=mask)
    randomize(ref)
    ours.set_weights(ref.get_weights())
    assert max_diff(ours(x, mask=mask), ref(x, mask=mask)) <= 1e-5
    if return_sequences:
        assert ours.forward_layer.zero_output_for_mask


@pytest.mark.parametrize("case", ["elman", "gru_reset_after", "lstm"])
def test_initial_state_and_stacking_match_keras(case):
    ours_cls, ref_cls, extra = CASES[case]
    x, mask = padded_batch()
    n_states = 2 if case == "lstm" else 1
    init = [np.random.default_rng(3).normal(size=(B, U)).astype("float32") for _ in range(n_states)]

    def model(layer_cls):
        inp = keras.Input((T, D))
        h = keras.layers.Masking()(inp)
        h = layer_cls(U, return_sequences=True, **extra)(h)
        h = layer_cls(U, **extra)(h)
        return keras.Model(inp, h)

    ours_m, ref_m = model(ours_cls), model(ref_cls)
    for layer in ref_m.layers:
        if layer.weights:
            randomize(layer)
    ours_m.set_weights(ref_m.get_weights())
    assert max_diff(ours_m(x), ref_m(x)) <= 1e-5

    ours, ref = ours_cls(U, return_sequences=True, **extra), ref_cls(U, return_sequences=True, **extra)
    ref(x, initial_state=init)
    ours(x, initial_state=init)
    randomize(ref)
    ours.set_weights(ref.get_weights())
    assert max_diff(ours(x, initial_state=init, mask=mask), ref(x, initial_state=init, mask=mask)) <= 1e-5


def test_mask_propagates():
    inp = keras.Input((None,), dtype="int32")
    emb = keras.layers.Embedding(10, 4, mask_zero=True)(inp)
    seq = keras_seq.GRU(3, return_sequences=True)(emb)
    assert seq._keras_mask is not None
    last = keras_seq.LSTM(3)(seq)
    assert getattr(last, "_keras_mask", None) is None
    layer = keras_seq.LSTM(3, return_sequences=True, return_state=True)
    masks = layer.compute_mask(None, tf.ones((2, 5), tf.bool))
    assert len(masks) == 3 and masks[1] is None


@pytest.mark.parametrize("case", ["elman", "gru_reset_after", "gru_reset_before", "lstm"])
def test_numeric_gradient_bptt(case):
    """Central differences in float64 agree with autodiff through time."""
    ours_cls, _, extra = CASES[case]
    rng = np.random.default_rng(5)
    layer = ours_cls(3, return_sequences=True, dtype="float64", **extra)
    x = tf.constant(rng.normal(size=(2, 5, 2)), dtype=tf.float64)
    layer(x)
    randomize(layer, seed=6)
    weights = tf.constant(rng.normal(size=(2, 5, 3)), dtype=tf.float64)

    def loss_of(inputs):
        return tf.reduce_sum(layer(inputs) * weights)

    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = loss_of(x)
    grads = tape.gradient(loss, [x] + layer.trainable_variables)

    eps = 1e-6
    x_np = x.numpy()
    numeric = np.zeros_like(x_np)
    for idx in np.ndindex(*x_np.shape):
        plus, minus = x_np.copy(), x_np.copy()
        plus[idx] += eps
        minus[idx] -= eps
        numeric[idx] = (loss_of(tf.constant(plus)) - loss_of(tf.constant(minus))).numpy() / (2 * eps)
    np.testing.assert_allclose(grads[0].numpy(), numeric, rtol=1e-5, atol=1e-7)

    kernel = layer.cell.recurrent_kernel
    original = kernel.numpy()
    for idx in [(0, 0), (1, 2), (2, kernel.shape[1] - 1)]:
        values = []
        for sign in (1, -1):
            perturbed = original.copy()
            perturbed[idx] += sign * eps
            kernel.assign(perturbed)
            values.append(loss_of(x).numpy())
        kernel.assign(original)
        numeric_k = (values[0] - values[1]) / (2 * eps)
        position = [v.path for v in layer.trainable_variables].index(kernel.path)
        autodiff_k = grads[1 + position].numpy()[idx]
        assert abs(numeric_k - autodiff_k) <= 1e-5 * max(1.0, abs(numeric_k))


@pytest.mark.parametrize("case", ["elman", "gru_reset_after", "lstm"])
@pytest.mark.parametrize("go_backwards", [False, True])
def test_padded_positions_get_exactly_zero_gradient(case, go_backwards):
    ours_cls, _, extra = CASES[case]
    x, mask = padded_batch()
    x = tf.constant(x)
    layer = ours_cls(U, return_sequences=True, return_state=True, go_backwards=go_backwards, **extra)
    with tf.GradientTape() as tape:
        tape.watch(x)
        outputs = layer(x, mask=mask)
        loss = sum(tf.reduce_sum(o**2) for o in outputs)
    grad = tape.gradient(loss, x).numpy()
    assert np.all(grad[~mask] == 0.0)
    assert np.any(grad[mask] != 0.0)
    # The final state is the state after the last valid step.
    short = layer(x[:, : LENGTHS[1]], mask=mask[:, : LENGTHS[1]]) if not go_backwards else None
    if short is not None:
        np.testing.assert_allclose(outputs[1][1], short[1][1], atol=1e-6)


def test_dropout_is_variational_and_off_at_inference():
    x = np.ones((2, 6, 4), "float32")
    layer = keras_seq.LSTM(5, dropout=0.5, recurrent_dropout=0.5, return_sequences=True, seed=1)
    a = layer(x, training=False)
    b = layer(x, training=False)
    np.testing.assert_array_equal(a, b)
    c = layer(x, training=True)
    assert not np.allclose(a, c)
    # Input dropout: the same features are dropped at every step of a sequence.
    x = np.ones((64, 6, 8), "float32")
    out = keras_seq.Elman(
        3,
        dropout=0.5,
        seed=2,
        return_sequences=True,
        kernel_initializer="ones",
        recurrent_initializer="zeros",
        activation="linear",
        use_bias=False,
    )(x, training=True)
    out = np.asarray(out)
    np.testing.assert_allclose(out[:, 0], out[:, -1])  # same mask at every step
    assert len(np.unique(out[:, 0, 0])) > 1  # but different per sequence


def test_stateful_carries_state_and_resets():
    x = np.random.default_rng(0).normal(size=(2, 4, 3)).astype("float32")
    inp = keras.Input(batch_shape=(2, 4, 3))
    layer = keras_seq.GRU(5, stateful=True)
    model = keras.Model(inp, layer(inp))
    first = np.asarray(model(x))
    second = np.asarray(model(x))
    assert not np.allclose(first, second)
    layer.reset_state()
    np.testing.assert_allclose(np.asarray(model(x)), first, atol=1e-6)
    full = keras_seq.GRU(5)
    full(np.concatenate([x, x], axis=1))
    full.set_weights(layer.get_weights())
    np.testing.assert_allclose(np.asarray(full(np.concatenate([x, x], axis=1))), second, atol=1e-5)
    assert len(layer.get_weights()) == 3  # states are not weights


@pytest.mark.parametrize("cls", [keras_seq.Elman, keras_seq.GRU, keras_seq.LSTM])
def test_config_round_trip(cls):
    layer = cls(
        7,
        return_sequences=True,
        go_backwards=True,
        dropout=0.1,
        recurrent_dropout=0.2,
        kernel_regularizer="l2",
        name="rnn",
    )
    config = layer.get_config()
    clone = cls.from_config(config)
    assert clone.get_config() == config
    generic = keras_seq.Recurrent(keras_seq.LSTMCell(4), return_state=True)
    assert keras_seq.Recurrent.from_config(generic.get_config()).get_config() == generic.get_config()


def test_cells_work_in_keras_rnn_wrapper():
    x, _ = padded_batch()
    for cell_cls, ref_cls in [(keras_seq.LSTMCell, keras.layers.LSTM), (keras_seq.GRUCell, keras.layers.GRU)]:
        ours = keras.layers.RNN(cell_cls(U))
        ref = ref_cls(U)
        ours(x)
        ref(x)
        randomize(ref)
        ours.set_weights(ref.get_weights())
        assert max_diff(ours(x), ref(x)) <= 1e-5


@pytest.mark.parametrize(
    "make, word",
    [
        (lambda: keras_seq.LSTM(0), "units"),
        (lambda: keras_seq.GRU(-3), "units"),
        (lambda: keras_seq.Elman(2.5), "units"),
        (lambda: keras_seq.Elman(4, activation="swishy"), "activation"),
        (lambda: keras_seq.LSTM(4, recurrent_activation="nope"), "recurrent_activation"),
        (lambda: keras_seq.GRU(4, dropout=1.5), "dropout"),
        (lambda: keras_seq.GRU(4, recurrent_dropout=-0.1), "recurrent_dropout"),
        (lambda: keras_seq.LSTM(4, colour="blue"), "colour"),
        (lambda: keras_seq.SequencePooling("median"), "mode"),
    ],
)
def test_bad_arguments_raise_clear_value_error(make, word):
    with pytest.raises(ValueError, match=word):
        make()


@pytest.mark.parametrize("shape", [(4, 5), (2, 3, 4, 5)])
def test_wrong_input_rank_is_a_clear_error(shape):
    with pytest.raises(ValueError, match="rank 3"):
        keras_seq.LSTM(3)(np.zeros(shape, "float32"))


@pytest.mark.parametrize("cls_name", ["Elman", "GRU", "LSTM"])
def test_fit_in_user_code(cls_name):
    cls = getattr(keras_seq, cls_name)
    rng = np.random.default_rng(0)
    x = rng.integers(1, 20, size=(64, 12))
    x[::3, 8:] = 0  # padded
    y = (x[:, 0] > 10).astype("float32")
    model = keras.Sequential(
        [
            keras.Input((12,), dtype="int32"),
            keras.layers.Embedding(20, 8, mask_zero=True),
            keras.layers.Bidirectional(cls(8, return_sequences=True)),
            cls(8, dropout=0.1, recurrent_dropout=0.1),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="binary_crossentropy")
    history = model.fit(x, y, epochs=3, batch_size=16, verbose=0)
    losses = history.history["loss"]
    assert np.all(np.isfinite(losses)) and losses[-1] < losses[0]


def test_keras_file_round_trip_in_fresh_process(tmp_path):
    x, mask = padded_batch()
    inp = keras.Input((T, D))
    h = keras.layers.Masking()(inp)
    h = keras.layers.Bidirectional(keras_seq.GRU(U, return_sequences=True, reset_after=False))(h)
    h = keras_seq.Elman(U, return_sequences=True, activation="relu")(h)
    h = keras_seq.SequencePooling("mean")(keras_seq.LSTM(U, return_sequences=True)(h))
    model = keras.Model(inp, keras.layers.Dense(2)(h))
    path = tmp_path / "model.keras"
    model.save(path)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", np.asarray(model(x)))
    code = (
        "import sys, numpy as np, keras, keras_seq\n"
        "d = sys.argv[1]\n"
        "m = keras.saving.load_model(d + '/model.keras')\n"
        "diff = np.abs(np.asarray(m(np.load(d + '/x.npy'))) - np.load(d + '/y.npy')).max()\n"
        "print('DIFF', diff)\n"
    )
    result = run_python(code, str(tmp_path))
    assert result.returncode == 0, result.stderr[-2000:]
    diff = float(result.stdout.split("DIFF")[-1])
    assert diff <= 1e-6


@pytest.mark.parametrize("signature", [(1, None, D), (None, None, D), (B, None, D), (None, T, D)])
@pytest.mark.parametrize("use_mask", [False, True])
def test_graph_mode_with_unknown_dimensions_matches_eager(signature, use_mask):
    """Keras' predict retraces with relaxed shapes such as (1, None, D)."""
    x, mask = padded_batch()
    batch = 1 if signature[0] == 1 else B
    x, mask = x[:batch], mask[:batch]
    layer = keras_seq.LSTM(U, return_sequences=True, return_state=True)
    eager = layer(x, mask=mask if use_mask else None)
    specs = [tf.TensorSpec(signature), tf.TensorSpec(signature[:2], tf.bool)]

    @tf.function(input_signature=specs)
    def run(inputs, m):
        return layer(inputs, mask=m if use_mask else None)

    assert max_diff(run(x, mask), eager) <= 1e-6


# -- the fused (cuDNN) path ---------------------------------------------------------------
def _sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


def _cudnn_like(cell: str):
    """A NumPy stand-in for the backend's fused kernel with cuDNN's conventions: zeros after a
    row's end, go_backwards runs each row's valid part reversed (outputs at the end, in
    processing order), and garbage (NaN) for a mask cuDNN cannot take (not right-padded, or
    an empty row) -- so a test fails unless the layer routes such masks to its loop."""

    def kernel(
        x,
        *states_and_mask,
        kernel,
        recurrent_kernel,
        bias,
        activation,
        recurrent_activation,
        return_sequences,
        go_backwards,
        unroll,
        reset_after=True,
    ):
        *states, mask = states_and_mask
        x, W, U, b = (np.asarray(v, "float64") for v in (x, kernel, recurrent_kernel, bias))
        states = [np.asarray(s, "float64") for s in states]
        B, T, _ = x.shape
        mask = np.ones((B, T), bool) if mask is None else np.asarray(mask, bool)
        lengths = mask.sum(1)
        usable = (mask == (np.arange(T)[None] < lengths[:, None])).all() and (lengths > 0).all()
        outputs = np.zeros((B, T, U.shape[0]))
        for row in range(B):
            h, c = states[0][row], states[-1][row]
            steps = range(lengths[row] - 1, -1, -1) if go_backwards else range(lengths[row])
            for k, t in enumerate(steps):
                if cell == "lstm":
                    z = x[row, t] @ W + h @ U + b
                    i, f, g, o = np.split(z, 4)
                    c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
                    h = _sigmoid(o) * np.tanh(c)
                else:
                    xz, xr, xh = np.split(x[row, t] @ W + b[0], 3)
                    hz, hr, hh = np.split(h @ U + b[1], 3)
                    z, r = _sigmoid(xz + hz), _sigmoid(xr + hr)
                    h = z * h + (1 - z) * np.tanh(xh + r * hh)
                outputs[row, T - lengths[row] + k if go_backwards else t] = h
            states[0][row], states[-1][row] = h, c
        if not usable:
            outputs[:], states = np.nan, [s * np.nan for s in states]
        final = [states[0].astype("float32")] + ([states[1].astype("float32")] if cell == "lstm" else [])
        last = final[0]
        out = outputs.astype("float32") if return_sequences else last[:, None]
        return last, out, final

    return kernel


@pytest.fixture
def fake_fused_kernel(monkeypatch):
    from keras_seq import _keras_compat

    calls = []

    def counted(name):
        def run(*args, **kwargs):
            calls.append(name)
            return _cudnn_like(name)(*args, **kwargs)

        return run

    monkeypatch.setattr(_keras_compat, "fused_lstm", counted("lstm"))
    monkeypatch.setattr(_keras_compat, "fused_gru", counted("gru"))
    monkeypatch.setattr(_keras_compat, "fused_kernel_device", lambda *a: True)
    return calls


@pytest.mark.parametrize("cls", ["LSTM", "GRU"])
@pytest.mark.parametrize(
    "options",
    [
        {},
        {"return_sequences": True},
        {"go_backwards": True, "return_sequences": True},
        {"return_state": True},
        {"bidirectional": True},
    ],
)
def test_fused_path_matches_the_loop_and_routes_unusable_masks_to_it(fake_fused_kernel, cls, options):
    options = dict(options)
    bidirectional = options.pop("bidirectional", False)

    def make(use_cudnn):
        layer = getattr(keras_seq, cls)(5, use_cudnn=use_cudnn, **options)
        return keras.layers.Bidirectional(layer) if bidirectional else layer

    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 6, 4)).astype("float32")
    fused, loop = make("auto"), make(False)
    loop(x), fused(x)
    fused.set_weights(loop.get_weights())
    right_padded = np.arange(6)[None] < np.array([6, 4, 2])[:, None]
    left_padded = right_padded[:, ::-1]
    empty_row = right_padded & (np.arange(3) != 2)[:, None]
    for mask, expect_fused in [(None, True), (right_padded, True), (left_padded, False), (empty_row, False)]:
        del fake_fused_kernel[:]
        got, want = fused(x, mask=mask), loop(x, mask=mask)
        got, want = (got, want) if isinstance(got, (list, tuple)) else ([got], [want])
        for a, b in zip(got, want):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-5)
        if expect_fused:  # (an unusable mask reaches the kernel only in a traced graph's untaken branch)
            assert fake_fused_kernel, "the fused kernel was not used"


def test_fused_kernel_blockers_are_keras_conditions():
    assert keras_seq.LSTM(4).fused_kernel_blockers() == []
    assert keras_seq.GRU(4).fused_kernel_blockers() == []
    cases = {
        "activation='relu' (needs 'tanh')": dict(activation="relu"),
        "recurrent_activation='hard_sigmoid' (needs 'sigmoid')": dict(recurrent_activation="hard_sigmoid"),
        "use_bias=False": dict(use_bias=False),
        "unroll=True": dict(unroll=True),
        "recurrent_dropout=0.1": dict(recurrent_dropout=0.1),
        "use_cudnn=False": dict(use_cudnn=False),
    }
    for reason, kwargs in cases.items():
        assert keras_seq.LSTM(4, **kwargs).fused_kernel_blockers() == [reason]
    assert keras_seq.GRU(4, reset_after=False).fused_kernel_blockers() == ["reset_after=False"]
    assert "no fused kernel" in keras_seq.Elman(4).fused_kernel_blockers()[0]
    with pytest.raises(ValueError, match="cannot use the fused kernel: unroll=True"):
        keras_seq.LSTM(4, use_cudnn=True, unroll=True)
    layer = keras_seq.GRU(3, use_cudnn=True)  # on this CPU there is no fused kernel: said, not ignored
    with pytest.raises(ValueError, match="finds no fused kernel"):
        layer(np.zeros((1, 2, 3), "float32"))
    assert keras_seq.GRU.from_config(keras_seq.GRU(3, use_cudnn=False).get_config()).use_cudnn is False


@pytest.mark.parametrize("case", sorted(CASES))
def test_per_step_projection_matches_the_hoisted_one_with_gradients(case):
    ours, _, kwargs = CASES[case]
    x, mask = padded_batch(3)
    hoisted = ours(U, return_sequences=True, projection="hoisted", dropout=0.2, seed=1, **kwargs)
    per_step = ours(U, return_sequences=True, projection="per_step", dropout=0.2, seed=1, **kwargs)
    hoisted(x), per_step(x)
    per_step.set_weights(hoisted.get_weights())
    assert (hoisted.projection_form(True), per_step.projection_form(True)) == ("hoisted", "per_step")
    seed_state = np.asarray(hoisted.seed_generator.state)
    for training in (False, True):
        results = []
        for layer in (hoisted, per_step):
            layer.seed_generator.state.assign(seed_state)  # the same dropout masks
            inputs = tf.constant(x)
            with tf.GradientTape() as tape:
                tape.watch(inputs)
                out = layer(inputs, mask=tf.constant(mask), training=training)
                loss = tf.reduce_sum(out * out)
            results.append([out, *tape.gradient(loss, [inputs, *layer.trainable_weights])])
        for a, b in zip(*results):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-5)


def test_projection_is_checked_saved_and_auto_reads_the_measured_table(monkeypatch):
    with pytest.raises(ValueError, match="`projection` must be one of 'auto', 'hoisted', 'per_step'"):
        keras_seq.LSTM(4, projection="inside")
    layer = keras_seq.GRU(3, projection="per_step")
    assert keras_seq.GRU.from_config(layer.get_config()).projection == "per_step"
    monkeypatch.setattr(
        keras_seq.projection, "AUTO_PROJECTION", {(keras.backend.backend(), "GRUCell", "training"): "per_step"}
    )
    assert keras_seq.GRU(3).projection_form(training=True) == "per_step"
    assert keras_seq.GRU(3).projection_form(training=False) == "hoisted"  # not in the table
    assert keras_seq.LSTM(3).projection_form(training=True) == "hoisted"
    assert keras_seq.GRU(3, projection="hoisted").projection_form() == "hoisted"  # an explicit choice wins


def test_a_per_step_pick_at_batch_one_holds_only_under_the_weight_limit(monkeypatch):
    backend = keras.backend.backend()
    monkeypatch.setattr(keras_seq.projection, "AUTO_PROJECTION", {(backend, "GRUCell", "inference"): "per_step"})
    monkeypatch.setattr(
        keras_seq.projection, "PER_STEP_WEIGHT_LIMIT", {(backend, "GRUCell", "inference"): 4 * 3 * 24 * 4}
    )
    small, large = keras_seq.GRU(4), keras_seq.GRU(5)
    assert small.projection_form(False, 1) == large.projection_form(False, 1) == "per_step"  # not built: no size
    small.build((None, 7, 20)), large.build((None, 7, 20))
    # (D + H) x 3H floats: (20 + 4) x 12 x 4 bytes = 1,152, the limit; (20 + 5) x 15 x 4 = 1,500, over it
    assert (keras_seq.projection.weight_bytes(small.cell), keras_seq.projection.weight_bytes(large.cell)) == (
        1152,
        1500,
    )
    assert [small.projection_form(False, b) for b in (None, 1, 8)] == ["per_step"] * 3  # batch B falls back to batch 1
    assert [large.projection_form(False, b) for b in (None, 1, 8)] == ["hoisted"] * 3
    assert large.projection_form(True) == "hoisted"  # training: no entry
    bf16 = keras_seq.GRU(5, dtype="mixed_bfloat16")
    bf16.build((None, 7, 20))
    assert keras_seq.projection.weight_bytes(bf16.cell) == 750  # the compute dtype's bytes
    assert bf16.projection_form(False, 1) == "per_step"
    explicit = keras_seq.GRU(5, projection="per_step")
    explicit.build((None, 7, 20))
    assert explicit.projection_form(False, 1) == "per_step"  # an explicit choice wins


def test_auto_projection_in_inference_keys_on_the_batch_size_even_when_only_the_graph_knows_it(monkeypatch):
    backend = keras.backend.backend()
    monkeypatch.setattr(
        keras_seq.projection, "AUTO_PROJECTION", {(backend, "GRUCell", "inference_batched"): "per_step"}
    )
    auto = keras_seq.GRU(U, return_sequences=True, return_state=True)
    assert [auto.projection_form(False, b) for b in (None, 1, 8)] == ["hoisted", "hoisted", "per_step"]
    assert auto.projection_form(True, 8) == "hoisted"  # training: its own entry (none here)
    assert keras_seq.LSTM(U).projection_form(False, 8) == "hoisted"  # falls back to "inference"
    x, mask = padded_batch(4)
    auto(x)
    if backend != "tensorflow":
        return
    run = auto._run  # a spy: the per-step branch's outputs come back shifted by 100, so the answer says which ran

    def tagged(form, *args):
        last, outputs, states = run(form, *args)
        shift = 100.0 if form == "per_step" else 0.0
        return last + shift, outputs + shift, [s + shift for s in states]

    monkeypatch.setattr(auto, "_run", tagged)
    # A serving signature: the batch size is unknown when traced, so the graph picks when it runs.
    serve = tf.function(
        lambda t, m: auto(t, mask=m),
        input_signature=[tf.TensorSpec((None, *x.shape[1:])), tf.TensorSpec((None, x.shape[1]), tf.bool)],
    )
    graph_ops = {op.type for op in serve.get_concrete_function().graph.get_operations()}
    assert graph_ops & {"If", "StatelessIf"}, "no run-time pick in the graph"
    for rows, shifted in ((1, False), (4, True)):
        outputs = np.asarray(serve(x[:rows], mask[:rows])[0])
        assert (np.abs(outputs).min() > 50) == shifted, (rows, "per_step" if shifted else "hoisted")
    static = tf.function(lambda t: auto(t), input_signature=[tf.TensorSpec(x.shape)])
    assert not {op.type for op in static.get_concrete_function().graph.get_operations()} & {"If", "StatelessIf"}
    assert np.abs(np.asarray(static(x)[0])).min() > 50  # a known batch of 4: per-step, picked when traced
