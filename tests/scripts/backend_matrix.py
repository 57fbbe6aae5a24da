"""One backend's share of the backend matrix (run by tests/layers/test_backends.py, once per
backend, with KERAS_BACKEND set):

    python backend_matrix.py OUT_DIR [OTHER_OUT_DIR ...]

1. parity with Keras' built-in SimpleRNN / GRU (both reset_after) / LSTM, alone and in
   Bidirectional, on a right-padded masked batch: the same weights, the same outputs;
2. SequencePooling against NumPy over the valid steps; dot attention against Keras' own
   `Attention` layer on a padded memory; the attention decoder's steps against its teacher-forced call;
3. the model builders (classifier, CRF tagger, language model, attentional seq2seq) trained with `model.fit`
   on `keras_seq.pipelines.text_dataset` (tf.data), a stateful language model trained
   on arrays (the torch trap: its state variables are assigned after the step), greedy
   and beam decoding, the batched seq2seq beam search through `Seq2SeqStepper`; the contextual
   character layer fitted (its strings cut to the longest on TF and torch, every slot on JAX);
4. every model saved as ``.keras`` in OUT_DIR with its answers to a fixed probe; each
   OTHER_OUT_DIR's models (saved under another backend) are loaded here and must give
   that backend's answers, CRF tags and greedy tokens.

Prints one JSON object: {check: max abs difference, or a value}. (`run()` is the same,
called in-process by the test for TensorFlow, the test process' own backend.)
"""

import json
import sys
from pathlib import Path

import keras
import numpy as np

import keras_seq
from keras_seq import decoding
from keras_seq.pipelines import TextTokenizer, text_dataset

TOLERANCE = 1e-5
BACKEND = keras.backend.backend()
results = {"backend": BACKEND}


def check(name, got, want, tolerance=TOLERANCE):
    diff = float(np.max(np.abs(np.asarray(got, "float64") - np.asarray(want, "float64"))))
    results[name] = diff
    if not diff <= tolerance:
        raise AssertionError(f"{BACKEND}: {name}: max abs difference {diff:.3g} > {tolerance}")


def _compare(label: str, ours, theirs, x, mask=None) -> None:
    """Our layer with Keras' layer's weights: each output (and state) checked as LABEL/i."""
    want = theirs(x, mask=mask)
    ours(x, mask=mask)
    ours.set_weights(theirs.get_weights())
    got = ours(x, mask=mask)
    got, want = (got, want) if isinstance(got, (list, tuple)) else ([got], [want])
    for i, (a, b) in enumerate(zip(got, want)):
        check(f"{label}/{i}", keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b))


def parity():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 7, 6)).astype("float32")
    mask = np.ones((3, 7), bool)
    mask[1, 4:], mask[2, 2:] = False, False
    pairs = {
        "elman": (
            lambda: keras_seq.Elman(5, return_sequences=True),
            lambda: keras.layers.SimpleRNN(5, return_sequences=True),
        ),
        "gru": (lambda: keras_seq.GRU(5, return_sequences=True), lambda: keras.layers.GRU(5, return_sequences=True)),
        "gru_reset_before": (
            lambda: keras_seq.GRU(5, reset_after=False),
            lambda: keras.layers.GRU(5, reset_after=False),
        ),
        "lstm": (lambda: keras_seq.LSTM(5, return_state=True), lambda: keras.layers.LSTM(5, return_state=True)),
    }
    for name, (ours_, theirs_) in pairs.items():
        for wrap in (False, True):
            ours, theirs = ours_(), theirs_()
            if wrap:
                if name == "lstm":
                    continue  # return_state inside Bidirectional is covered by the ONNX tests
                ours, theirs = keras.layers.Bidirectional(ours), keras.layers.Bidirectional(theirs)
            _compare(f"parity/{'bidirectional_' if wrap else ''}{name}", ours, theirs, x, mask)
    # Backwards without a mask: where the backend's loop reads the steps backwards in place (JAX),
    # the layer hands it go_backwards instead of flipping the inputs first.
    for name, (ours_cls, theirs_cls) in {
        "elman": (keras_seq.Elman, keras.layers.SimpleRNN),
        "gru": (keras_seq.GRU, keras.layers.GRU),
        "lstm": (keras_seq.LSTM, keras.layers.LSTM),
    }.items():
        kwargs = {"return_sequences": True, "return_state": True, "go_backwards": True}
        _compare(f"backwards/{name}", ours_cls(5, **kwargs), theirs_cls(5, **kwargs), x)
    memory = rng.normal(size=(3, 7, 5)).astype("float32")
    context, weights = keras_seq.MultiplicativeAttention("dot")(x[:, :4, :5], memory, memory_mask=mask)
    theirs, their_weights = keras.layers.Attention()(
        [x[:, :4, :5], memory], mask=[None, mask], return_attention_scores=True
    )
    check("attention/dot_vs_keras_context", keras.ops.convert_to_numpy(context), keras.ops.convert_to_numpy(theirs))
    check(
        "attention/dot_vs_keras_weights", keras.ops.convert_to_numpy(weights), keras.ops.convert_to_numpy(their_weights)
    )
    decoder = keras_seq.AttentionDecoder(5, cell="lstm", attention="bahdanau")
    outputs, weights, *final = decoder(x[:, :4, :3], memory, memory_mask=mask)
    carry = decoder.initial_carry(decoder.cell.get_initial_state(3))
    for t in range(4):
        step_output, _, carry = decoder.step(x[:, t, :3], carry, memory, mask)
    check(
        "attention_decoder/steps_vs_teacher_forcing",
        keras.ops.convert_to_numpy(step_output),
        keras.ops.convert_to_numpy(outputs)[:, -1],
    )
    for mode in ("mean", "max"):
        got = keras.ops.convert_to_numpy(keras_seq.SequencePooling(mode)(x, mask=mask))
        want = np.stack([getattr(np, mode)(x[i][mask[i]], axis=0) for i in range(3)])
        check(f"pooling/{mode}", got, want)


TEXTS = ["a good film , not bad", "a bad film , not good", "good", "not good at all", "bad bad film"] * 8
PROBE = np.array([[3, 4, 5, 6, 0, 0], [7, 8, 0, 0, 0, 0]], "int32")
# Words of characters (ids < 12) with padding words and padding characters: (2, 4, 5).
CHAR_PROBE = np.array(
    [
        [[3, 4, 5, 0, 0], [6, 0, 0, 0, 0], [7, 8, 9, 10, 11], [0, 0, 0, 0, 0]],
        [[2, 2, 0, 0, 0], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0]],
    ],
    "int32",
)


def train_models(out: Path) -> dict:
    keras.utils.set_random_seed(0)
    tok = TextTokenizer.fit(TEXTS)
    labels = ["pos" if "good" in t.split()[1:3] else "neg" for t in TEXTS]
    models = {}
    classifier = keras_seq.build_classifier(tok.vocab_size, 2, cell="gru", units=8, embed_dim=8, pooling="mean")
    classifier.compile("adam", "sparse_categorical_crossentropy")
    history = classifier.fit(
        text_dataset(TEXTS, labels, tokenizer=tok, tokens_per_batch=64, buckets=1), epochs=1, verbose=0
    )
    results["fit/classifier_loss"] = history.history["loss"][-1]
    models["classifier"] = classifier

    tokens = [t.split() for t in TEXTS]
    tags = [["ADJ" if w in ("good", "bad") else "X" for w in row] for row in tokens]
    tagger = keras_seq.build_tagger(tok.vocab_size, 3, crf=True, cell="lstm", units=8, embed_dim=8, depth=1)
    tagger.compile("adam", loss=keras_seq.tagger_loss(tagger))
    history = tagger.fit(text_dataset(tokens, tags, tokenizer=tok, tokens_per_batch=64, buckets=1), epochs=1, verbose=0)
    results["fit/crf_tagger_loss"] = history.history["loss"][-1]
    models["crf_tagger"] = tagger

    lm = keras_seq.build_language_model(tok.vocab_size, cell="elman", units=8, embed_dim=8, depth=1)
    lm.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    ids = tok(TEXTS)
    lm.fit(ids[:, :-1], ids[:, 1:], batch_size=8, epochs=1, verbose=0)
    models["language_model"] = lm

    seq2seq = keras_seq.build_seq2seq(
        tok.vocab_size, tok.vocab_size + 2, cell="gru", units=8, embed_dim=8, attention="bahdanau"
    )  # targets: the source reversed; BOS = vocab size
    targets = np.where(ids > 0, ids[:, ::-1], 0)
    bos = np.full((len(ids), 1), tok.vocab_size)
    seq2seq.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = seq2seq.fit([ids, np.concatenate([bos, targets[:, :-1]], 1)], targets, batch_size=8, epochs=1, verbose=0)
    results["fit/seq2seq_loss"] = history.history["loss"][-1]
    models["seq2seq"] = seq2seq

    stateful = keras_seq.build_language_model(
        tok.vocab_size, cell="lstm", units=8, embed_dim=8, depth=1, batch_size=2, stateful=True
    )
    stateful.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = stateful.fit(ids[:8, :-1], ids[:8, 1:], batch_size=2, epochs=1, shuffle=False, verbose=0)
    results["fit/stateful_lm_loss"] = history.history["loss"][-1]
    whole = keras_seq.build_language_model(tok.vocab_size, cell="lstm", units=8, embed_dim=8, depth=1)
    whole(PROBE)
    whole.set_weights(stateful.get_weights())
    for layer in stateful.layers:
        if getattr(layer, "stateful", False):
            layer.reset_state()
    halves = [keras.ops.convert_to_numpy(stateful(PROBE[:, :3])), keras.ops.convert_to_numpy(stateful(PROBE[:, 3:]))]
    check("stateful/carries_state", np.concatenate(halves, 1), keras.ops.convert_to_numpy(whole(PROBE)))

    chars = keras.Input((None, None), dtype="int32")
    context = keras_seq.ContextualCharEmbedding(12, embed_dim=4, units=6, cell="gru")
    context_model = keras.Model(chars, context(chars))  # its strings are cut to the longest on TF and torch
    context_model.compile("adam", "mse")
    history = context_model.fit(CHAR_PROBE, np.ones((2, 4, 12), "float32"), epochs=1, verbose=0)
    results["fit/char_context_loss"] = history.history["loss"][-1]
    models["char_context"] = context_model

    answers = {}
    for name, model in models.items():
        model.save(out / f"{name}.keras")
        answers[name] = keras.ops.convert_to_numpy(model(_probe_inputs(name)))
    answers.update(decoded(models))
    np.savez(out / "answers.npz", **answers)
    return answers


def _probe_inputs(name):
    if name == "char_context":
        return CHAR_PROBE
    return [PROBE, np.concatenate([np.full((len(PROBE), 1), 2), PROBE[:, :-1]], 1)] if name == "seq2seq" else PROBE


def decoded(models) -> dict:
    stepper = keras_seq.LanguageModelStepper(models["language_model"], masked=True)
    log_probs, states = stepper.run(PROBE, stepper.initial_states(2))
    greedy = decoding.greedy(stepper.step, log_probs, states, 5)
    beam = decoding.beam_search(stepper.step, log_probs[:1], [s[:1] for s in states], 5, beam_width=1)
    if list(beam[0].tokens) != greedy[0].tolist():
        raise AssertionError(f"{BACKEND}: beam search of width 1 {beam[0].tokens} != greedy {greedy[0].tolist()}")
    crf = models["crf_tagger"].get_layer("crf")
    tags, _ = crf.decode(models["crf_tagger"](PROBE), PROBE != 0)
    s2s = keras_seq.Seq2SeqStepper(models["seq2seq"])
    bos = int(models["seq2seq"].get_layer("target_embedding").input_dim) - 2
    best = s2s.decode(PROBE, bos_id=bos, eos_id=bos + 1, beam_width=3)
    narrow = s2s.decode(PROBE, bos_id=bos, eos_id=bos + 1, beam_width=1)
    memory, mask, carry = s2s.encode(PROBE)
    greedy_s2s = decoding.batch_greedy(
        s2s.step_fn(memory, mask), carry, decoding.max_target_lengths((PROBE != 0).sum(1)), bos_id=bos, eos_id=bos + 1
    )
    if narrow.rows() != greedy_s2s.rows():
        raise AssertionError(f"{BACKEND}: seq2seq beam of width 1 {narrow.rows()} != greedy {greedy_s2s.rows()}")
    return {"greedy": greedy, "crf_tags": keras.ops.convert_to_numpy(tags), "seq2seq_beam": best.tokens}


def load_other(folder: Path) -> None:
    want = dict(np.load(folder / "answers.npz"))
    other = json.loads((folder / "results.json").read_text())["backend"]
    models = {}
    for name in ("classifier", "crf_tagger", "language_model", "seq2seq", "char_context"):
        models[name] = keras.saving.load_model(folder / f"{name}.keras")
        check(f"load/{other}/{name}", keras.ops.convert_to_numpy(models[name](_probe_inputs(name))), want[name])
    for key, value in decoded(models).items():
        if not np.array_equal(value, want[key]):
            raise AssertionError(
                f"{BACKEND}: {key} of the {other} models differ: {value.tolist()} != {want[key].tolist()}"
            )
        results[f"load/{other}/{key}"] = "equal"


def run(out, *others) -> dict:
    """This backend's share (parity and training once per OUT; then loading each OTHER's files)."""
    results.clear()
    results["backend"] = BACKEND
    out = Path(out)
    if not (out / "answers.npz").exists():
        parity()
        out.mkdir(parents=True, exist_ok=True)
        train_models(out)
        (out / "results.json").write_text(json.dumps({"backend": BACKEND}))
    for other in others:
        load_other(Path(other))
    return dict(results)


if __name__ == "__main__":
    print(json.dumps(run(*sys.argv[1:])))
