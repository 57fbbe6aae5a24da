"""The attention decoder: teacher forcing equals step-by-step decoding for every cell and
attention, masks on both sides, saving, and learning a small transduction; the batched
searches of `keras_seq.decoding` against exhaustive search and greedy (also with token
classes merged), and through `Seq2SeqStepper` on a trained model."""

from __future__ import annotations

import itertools

import keras
import numpy as np
import pytest

import keras_seq
from keras_seq import decoding

B, L, S, E, M, H = 3, 4, 5, 3, 6, 6
CASES = list(itertools.product(["lstm", "gru", "elman"], ["luong", "luong_dot", "bahdanau", None], [True]))
# without input feeding, teacher forcing runs the attention after the loop: a second path to check
CASES += [("lstm", "luong", False), ("gru", "bahdanau", False), ("elman", "luong_dot", False)]


def _inputs():
    rng = np.random.default_rng(0)
    targets = rng.normal(size=(B, L, E)).astype("float32")
    memory = rng.normal(size=(B, S, M)).astype("float32")
    memory_mask = np.arange(S)[None] < np.array([5, 3, 1])[:, None]
    return targets, memory, memory_mask


@pytest.mark.parametrize("cell,attention,input_feeding", CASES)
def test_teacher_forcing_equals_step_by_step(cell, attention, input_feeding):
    targets, memory, memory_mask = _inputs()
    decoder = keras_seq.AttentionDecoder(H, cell=cell, attention=attention, input_feeding=input_feeding)
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


@pytest.mark.parametrize("input_feeding", [True, False])
def test_padded_target_steps_keep_the_state_and_output_zeros(input_feeding):
    targets, memory, memory_mask = _inputs()
    decoder = keras_seq.AttentionDecoder(H, cell="lstm", attention="luong", input_feeding=input_feeding)
    target_mask = np.arange(L)[None] < np.array([4, 2, 3])[:, None]
    outputs, weights, *final = decoder(targets, memory, memory_mask=memory_mask, mask=target_mask)
    for padded in (np.asarray(outputs), np.asarray(weights)):
        assert np.abs(padded[1, 2:]).max() == 0.0 and np.abs(padded[2, 3:]).max() == 0.0
    assert decoder.cell.kernel.shape[0] == E + (H if input_feeding else 0)  # what the cell reads
    _, _, *prefix = decoder(targets[1:2, :2], memory[1:2], memory_mask=memory_mask[1:2])
    for got, want in zip(final, prefix):
        np.testing.assert_allclose(np.asarray(got)[1:2], np.asarray(want), atol=1e-5)


@pytest.mark.parametrize("input_feeding", [True, False])
def test_learns_to_reverse_and_saves(tmp_path, input_feeding):
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    source = rng.integers(1, 8, size=(2000, 5))
    target = source[:, ::-1]
    bos = np.full((2000, 1), 8)
    model = keras_seq.build_seq2seq(
        8, 9, cell="gru", units=16, embed_dim=16, attention="luong", input_feeding=input_feeding
    )  # 8 = <BOS>
    alignment = keras_seq.attention_model(model)
    model.compile(
        keras.optimizers.Adam(0.02), keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"]
    )
    history = model.fit([source, np.concatenate([bos, target[:, :-1]], 1)], target, batch_size=64, epochs=4, verbose=0)
    assert history.history["accuracy"][-1] > 0.95, history.history
    weights = np.asarray(alignment([source[:8], np.concatenate([bos, target[:, :-1]], 1)[:8]]))
    assert (weights.argmax(-1) == np.arange(5)[::-1]).mean() > 0.8  # it attends to the mirrored position
    # Beam search through the stepper (no EOS in this toy: every hypothesis runs 5 steps) reverses too.
    stepper = keras_seq.Seq2SeqStepper(model)
    memory, mask, carry = stepper.encode(source[:50])
    memory = keras.ops.convert_to_numpy(memory)
    for width in (1, 3):
        rows = np.repeat(np.arange(50), width)
        best = decoding.batch_beam_search(
            stepper.step_fn(memory[rows], mask[rows]), carry, [5] * 50, bos_id=8, eos_id=0, beam_width=width
        )
        assert (np.array(best.rows()) == target[:50]).mean() > 0.95
    model.save(tmp_path / "reverser.keras")
    again = keras.saving.load_model(tmp_path / "reverser.keras")
    probe = [source[:4], np.concatenate([bos, target[:, :-1]], 1)[:4]]
    np.testing.assert_allclose(np.asarray(again(probe)), np.asarray(model(probe)), atol=1e-5)
    assert again.get_layer("decoder").input_feeding is input_feeding


def test_bad_arguments():
    with pytest.raises(ValueError, match="`cell`"):
        keras_seq.AttentionDecoder(4, cell="rnn")
    with pytest.raises(ValueError, match="`attention`"):
        keras_seq.AttentionDecoder(4, attention="concat")
    targets, memory, _ = _inputs()
    with pytest.raises(ValueError, match="same size"):
        keras_seq.AttentionDecoder(4, attention="luong_dot")(targets, memory)


@pytest.mark.parametrize(
    "cell,attention,bidirectional", [("lstm", "bahdanau", True), ("elman", None, False), ("gru", "luong_dot", False)]
)
def test_build_seq2seq_variants_and_masked_targets(cell, attention, bidirectional):
    model = keras_seq.build_seq2seq(
        10,
        7,
        cell=cell,
        units=6,
        embed_dim=4,
        encoder_depth=2,
        attention=attention,
        bidirectional_encoder=bidirectional,
    )
    source = np.array([[3, 4, 5, 0], [6, 0, 0, 0]])
    target_in = np.array([[1, 2, 3], [1, 0, 0]])
    logits = np.asarray(model([source, target_in]))
    assert logits.shape == (2, 3, 7)
    longer = np.asarray(model([np.pad(source, [[0, 0], [0, 3]]), np.pad(target_in, [[0, 0], [0, 2]])]))
    np.testing.assert_allclose(longer[:, :3][target_in > 0], logits[target_in > 0], atol=1e-5)  # padding-invariant
    with pytest.raises(ValueError, match="encoder_depth"):
        keras_seq.build_seq2seq(10, 7, encoder_depth=0)


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="XLA through model.compile(jit_compile=True) on TF")
@pytest.mark.parametrize(
    "attention,input_feeding",
    # both encoders (bidirectional or not), both score families (additive, multiplicative), with and
    # without input feeding; each attention alone is checked against the step-by-step path above
    [("bahdanau", True), ("luong_dot", False)],
)
def test_xla_training_step_equals_the_graph_step(attention, input_feeding):
    """jit_compile=True trains the encoder-decoder on batches of unknown batch size and lengths (as the
    pipeline feeds them) to the same loss and weights as the plain graph."""
    import tensorflow as tf

    rng = np.random.default_rng(0)
    source, target_in, target = rng.integers(1, 10, (6, 5)), rng.integers(1, 7, (6, 4)), rng.integers(1, 7, (6, 4))
    source[3:, 3:], target_in[4:, 2:], target[4:, 2:] = 0, 0, 0
    data = tf.data.Dataset.from_tensor_slices(((source, target_in), target)).batch(3)
    data = data.map(
        lambda x, y: (
            (tf.ensure_shape(x[0], (None, None)), tf.ensure_shape(x[1], (None, None))),
            tf.ensure_shape(y, (None, None)),
        )
    )  # unknown batch and length, as in training
    trained = {}
    for jit in (False, True):
        keras.utils.set_random_seed(0)
        model = keras_seq.build_seq2seq(
            10,
            7,
            cell="lstm",
            units=6,
            embed_dim=4,
            attention=attention,
            input_feeding=input_feeding,
            bidirectional_encoder=attention != "luong_dot",
        )
        model.compile(
            keras.optimizers.Adam(0.01), keras.losses.SparseCategoricalCrossentropy(from_logits=True), jit_compile=jit
        )
        loss = model.fit(data, epochs=2, verbose=0).history["loss"]
        trained[jit] = loss, model.get_weights()
    np.testing.assert_allclose(trained[True][0], trained[False][0], rtol=1e-4)
    for xla, graph in zip(trained[True][1], trained[False][1]):
        np.testing.assert_allclose(xla, graph, atol=1e-4)


class _ToyRNN:
    """A random NumPy RNN language model over V tokens: the step function of the searches."""

    def __init__(self, vocab: int = 4, units: int = 3, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.embed, self.recurrent = rng.normal(size=(vocab, units)), rng.normal(size=(units, units))
        self.out = rng.normal(size=(units, vocab)) * 1.5

    def step(self, ids, states):
        h = np.tanh(self.embed[ids] + states[0] @ self.recurrent)
        logits = h @ self.out
        return logits - np.log(np.exp(logits).sum(-1, keepdims=True)), [h]


@pytest.mark.parametrize("eos_id, alpha", [(3, 1.0), (3, 0.0), (2, 0.6)])
def test_batch_beam_search_equals_exhaustive_search_per_source(eos_id, alpha):
    toy, vocab = _ToyRNN(), 4
    starts = np.random.default_rng(1).normal(size=(3, 3))
    max_lengths = [4, 2, 3]  # each source its own limit
    wide = decoding.batch_beam_search(
        toy.step, [starts], max_lengths, bos_id=1, eos_id=eos_id, beam_width=vocab**4, alpha=alpha, banned=()
    )
    for b, length in enumerate(max_lengths):
        log_probs, states = toy.step(np.array([1]), [starts[b : b + 1]])
        exact = decoding.exhaustive_search(toy.step, log_probs, states, length, eos_id=eos_id, alpha=alpha)
        tokens = [t for t in exact.tokens if t != eos_id]
        assert wide.rows()[b] == tokens
        assert float(wide.scores[b]) == pytest.approx(exact.score, abs=1e-5)
        assert float(wide.log_probs[b]) == pytest.approx(exact.log_prob, abs=1e-5)


def _merged_by_hand(log_probs: np.ndarray, classes: list[int]) -> np.ndarray:
    out = np.full_like(log_probs, -np.inf)
    for row, values in enumerate(log_probs):
        for cls in set(classes):
            members = [v for v in range(len(classes)) if classes[v] == cls]
            finite = [v for v in members if np.isfinite(values[v])]
            first = min(members, key=lambda v: (-values[v], v))  # likeliest; ties: the lower id
            out[row, first] = np.log(np.exp(values[finite].astype(np.float64)).sum()) if finite else -np.inf
    return out


def test_merge_classes_sums_each_class_onto_its_likeliest_member_in_numpy_and_tf():
    from keras_seq.export.savedmodel.beam_search import merge_classes as merge_in_tf

    rng = np.random.default_rng(4)
    classes = [0, 1, 2, 2, 4, 2, 6, 6, 8]
    log_probs = np.log(rng.dirichlet(np.ones(9), size=40)).astype(np.float32)
    log_probs[:10, 2] = log_probs[:10, 3] = log_probs[:10, [2, 3, 5]].max(-1)  # ties go to the lower id
    log_probs[10:20, [6, 7]] = -np.inf  # a class with no allowed member stays impossible
    log_probs[20:25, 2] = -np.inf
    merged = decoding.merge_classes(log_probs, classes)
    np.testing.assert_allclose(merged, _merged_by_hand(log_probs, classes), rtol=1e-6)
    np.testing.assert_allclose(np.exp(merged).sum(-1), np.exp(log_probs).sum(-1), rtol=1e-5)  # moved, not made
    assert (merged[:10, 3] == -np.inf).all() and np.isfinite(merged[:10, 2]).all()
    member, column = decoding.class_tables(classes)
    in_tf = merge_in_tf(log_probs, member, column).numpy()
    np.testing.assert_array_equal(np.isfinite(in_tf), np.isfinite(merged))  # the same member holds each class
    np.testing.assert_allclose(in_tf, merged, rtol=1e-6)  # TF's exp and log may differ in the last bit
    np.testing.assert_array_equal(decoding.merge_classes(log_probs, range(9)), log_probs)  # singletons: unchanged
    with pytest.raises(ValueError, match="one class id"):
        decoding.merge_classes(log_probs, [0, 9] + list(range(2, 9)))


def test_merged_beam_search_finds_the_likeliest_class_sequence():
    """Tokens 2 and 3 are one class; the toy's state depends on the class only, so the merged
    search at full width must find exactly the class sequence of highest summed probability."""
    toy, eos_id, length, classes = _ToyRNN(vocab=5, seed=15), 4, 3, [0, 1, 2, 2, 4]
    toy.embed[3] = toy.embed[2]
    starts = np.random.default_rng(6).normal(size=(4, 3))

    def sequences(state, token, prefix, log_p):  # every token sequence: (tokens, log p, length with EOS)
        log_probs, (state,) = toy.step(np.array([token]), [state])
        for v in range(1, 5):
            total = log_p + float(log_probs[0, v])
            if v == eos_id:
                yield tuple(prefix), total, len(prefix) + 1
            elif len(prefix) + 1 == length:
                yield (*prefix, v), total, length
            else:
                yield from sequences(state, v, [*prefix, v], total)

    for alpha in (0.0, 1.0):
        merged = decoding.batch_beam_search(
            toy.step, [starts], [length] * 4, bos_id=1, eos_id=eos_id, beam_width=64, alpha=alpha, classes=classes
        )
        plain = decoding.batch_beam_search(
            toy.step, [starts], [length] * 4, bos_id=1, eos_id=eos_id, beam_width=64, alpha=alpha
        )
        differs = 0
        for b in range(4):
            by_class: dict = {}
            for tokens, log_p, n in sequences(starts[b : b + 1], 1, [], 0.0):
                key = tuple(classes[t] for t in tokens)
                by_class[key] = (np.logaddexp(by_class.get(key, (-np.inf,))[0], log_p), n)
            best = max(by_class, key=lambda k: by_class[k][0] / by_class[k][1] ** alpha)
            assert tuple(classes[t] for t in merged.rows()[b]) == best
            assert float(merged.scores[b]) == pytest.approx(by_class[best][0] / by_class[best][1] ** alpha, abs=1e-5)
            differs += [classes[t] for t in plain.rows()[b]] != list(best)
        if alpha == 1.0:
            assert differs  # the case is not trivial: ranking by one spelling picks another answer somewhere


@pytest.mark.parametrize(
    "decode, message",
    [
        ({"beam": 0}, "decode.beam must be a positive integer"),
        ({"merge_stress": "yes"}, "decode.merge_stress must be true or false"),
        ({"width": 4}, "unknown decode setting 'width'"),
    ],
)
def test_decode_settings_are_checked(decode, message):
    from keras_seq.tasks.seq2seq import check_decode_settings

    with pytest.raises(ValueError, match=message):
        check_decode_settings(decode)


def test_width_one_is_greedy_and_sources_do_not_interact():
    toy = _ToyRNN(vocab=6, seed=2)
    starts = np.random.default_rng(3).normal(size=(5, 3))
    greedy = decoding.batch_greedy(toy.step, [starts], [6] * 5, bos_id=1, eos_id=5)
    narrow = decoding.batch_beam_search(toy.step, [starts], [6] * 5, bos_id=1, eos_id=5, beam_width=1)
    assert greedy.rows() == narrow.rows()
    for b in range(5):  # greedy by hand: argmax (first on ties), padding never emitted, stop at EOS
        state, token, row = starts[b : b + 1], 1, []
        for _ in range(6):
            log_probs, (state,) = toy.step(np.array([token]), [state])
            log_probs[0, 0] = -np.inf
            token = int(log_probs.argmax())
            if token == 5:
                break
            row.append(token)
        assert greedy.rows()[b] == row
    wide = decoding.batch_beam_search(toy.step, [starts], [6] * 5, bos_id=1, eos_id=5, beam_width=4)
    for b in range(5):  # one source alone gets the same answer as in the batch
        alone = decoding.batch_beam_search(toy.step, [starts[b : b + 1]], [6], bos_id=1, eos_id=5, beam_width=4)
        assert alone.rows() == [wide.rows()[b]] and alone.scores[0] == pytest.approx(wide.scores[b], abs=1e-6)


def test_search_arguments_and_length_limits():
    toy = _ToyRNN()
    with pytest.raises(ValueError, match="beam_width"):
        decoding.batch_beam_search(toy.step, [np.zeros((1, 3))], [3], bos_id=1, eos_id=3, beam_width=0)
    with pytest.raises(ValueError, match="max_lengths"):
        decoding.batch_beam_search(toy.step, [np.zeros((1, 3))], [0], bos_id=1, eos_id=3)
    np.testing.assert_array_equal(decoding.max_target_lengths([0, 4, 7], 1.5, 3), [3, 9, 13])
    with pytest.raises(ValueError, match="extra"):
        decoding.max_target_lengths([3], 2.0, 0)
