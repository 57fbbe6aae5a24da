"""`keras-seq generate`: continue a prompt with a trained language model (`generate_text`),
or transduce a text with an encoder-decoder (`transduce`), optionally plotting its alignment."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf

import keras_seq
from keras_seq import decoding
from keras_seq.contracts import RunDirectory
from keras_seq.pipelines.evaluate import load_model
from keras_seq.pipelines.vocab import TextEncoder
from keras_seq.tasks import get_task


def generate_text(
    run_dir: str | Path,
    prompt: str,
    length: int = 200,
    temperature: float | None = None,
    beam: int | None = None,
    seed: int = 0,
) -> str:
    """Greedy by default; temperature sampling (seeded) or beam search on request."""
    run = RunDirectory(run_dir).check()
    config = run.config()
    why = get_task(config["task"]).not_deployable(config)
    if why:
        raise ValueError(f"{run.path}: {why}")
    encoder = TextEncoder(run.path)
    model = load_model(run.model)
    stepper = keras_seq.LanguageModelStepper(model)
    ids = encoder.encode(tf.constant([prompt])).to_list()[0]
    if not ids:
        raise ValueError("the prompt is empty after tokenization")
    log_probs, states = stepper.run(np.array([ids]), stepper.initial_states(1))
    if beam is not None:
        tokens = list(
            decoding.beam_search(stepper.step, log_probs, states, length, beam_width=beam, alpha=0.0)[0].tokens
        )
    elif temperature is not None:
        tokens = decoding.sample(stepper.step, log_probs, states, length, temperature, seed)[0].tolist()
    else:
        tokens = decoding.greedy(stepper.step, log_probs, states, length)[0].tolist()
    words = encoder.vocab.tokens
    joiner = "" if encoder.spec.level == "char" else " "
    return prompt + joiner + joiner.join(words[t] if t > 1 else "" for t in tokens)


def transduce(run_dir: str | Path, text: str, beam: int | None = None, plot: str | Path | None = None) -> dict:
    """An encoder-decoder's answer for one source text (``{"output": [...], "score": s}``),
    by beam search with the run's ``[decode]`` settings (`beam` overrides the width);
    `plot`: also save the attention alignment of that output as a PNG heat map."""
    from keras_seq.contracts import Vocabulary
    from keras_seq.contracts.answers import seq2seq_answer
    from keras_seq.tasks import get_task
    from keras_seq.tasks.seq2seq import decode_ids

    run = RunDirectory(run_dir).check()
    config = run.config()
    task = get_task(config["task"])
    encoder = TextEncoder(run.path)
    targets = Vocabulary.load(run.file(task.label_file), level="label").tokens
    model = load_model(run.model)
    tokens = encoder.tokens(tf.constant([text])).to_list()[0]
    ids = encoder.lookup(tf.ragged.constant([tokens], dtype=tf.string)).to_tensor(0).numpy()
    if ids.size == 0:
        raise ValueError("the text is empty after tokenization")
    best = decode_ids(model, config, ids, targets, beam=beam)
    row = best.rows()[0]
    answer = seq2seq_answer([targets[i] for i in row], best.scores[0])
    if plot is not None:
        from keras_seq.contracts.vocab import BOS_ID

        weights = keras_seq.attention_model(model).predict([ids, np.array([[BOS_ID, *row]])], verbose=0)[0]
        _plot_alignment(weights, [t.decode("utf-8", "replace") for t in tokens], answer["output"] + ["<EOS>"], plot)
    return answer


def _plot_alignment(weights: np.ndarray, sources: list[str], targets: list[str], path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from keras_seq.contracts.files import replace_atomically

    fig, ax = plt.subplots(figsize=(1 + 0.45 * len(sources), 1 + 0.4 * len(targets)))
    ax.imshow(weights[: len(targets), : len(sources)], cmap="Greys", vmin=0.0, vmax=1.0)
    ax.set_xticks(range(len(sources)), sources)
    ax.set_yticks(range(len(targets)), targets)
    ax.set_xlabel("source")
    ax.set_ylabel("output")
    fig.tight_layout()
    replace_atomically(Path(path), lambda tmp: fig.savefig(tmp, dpi=100, format="png"))
    plt.close(fig)
