"""`keras-seq generate`: continue a prompt with a trained language model."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf

import keras_seq
from keras_seq import decoding
from keras_seq.contracts import RunDirectory
from keras_seq.pipelines.evaluate import load_model
from keras_seq.pipelines.vocab import TextEncoder


def generate_text(run_dir: str | Path, prompt: str, length: int = 200, temperature: float | None = None,
                  beam: int | None = None, seed: int = 0) -> str:
    """Greedy by default; temperature sampling (seeded) or beam search on request."""
    run_dir = Path(run_dir)
    encoder = TextEncoder(run_dir)
    model = load_model(RunDirectory(run_dir).check().model)
    stepper = keras_seq.LanguageModelStepper(model)
    ids = encoder.encode(tf.constant([prompt])).to_list()[0]
    if not ids:
        raise ValueError("the prompt is empty after tokenization")
    log_probs, states = stepper.run(np.array([ids]), stepper.initial_states(1))
    if beam is not None:
        tokens = list(decoding.beam_search(stepper.step, log_probs, states, length, beam_width=beam, alpha=0.0)[0].tokens)
    elif temperature is not None:
        tokens = decoding.sample(stepper.step, log_probs, states, length, temperature, seed)[0].tolist()
    else:
        tokens = decoding.greedy(stepper.step, log_probs, states, length)[0].tolist()
    words = encoder.vocab.tokens
    joiner = "" if encoder.spec.level == "char" else " "
    return prompt + joiner + joiner.join(words[t] if t > 1 else "" for t in tokens)
