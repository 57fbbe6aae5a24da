"""The demo's training half: generate the review corpus, train on it, compare with bag-of-words.

`train_demo` is what ``keras-seq demo`` runs first (`keras_seq.cli.demo` then
exports and answers from both runtimes); it logs progress and returns results.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import tensorflow as tf

from keras_seq.contracts import RunDirectory, read_labels
from keras_seq.pipelines.config import load_config
from keras_seq.pipelines.synthetic import DEMO_SENTENCES, write_corpus
from keras_seq.pipelines.train import train_run
from keras_seq.tasks import get_task

DEMO_CONFIG = Path(__file__).resolve().parent / "configs" / "demo.toml"
logger = logging.getLogger(__name__)


def train_demo(out: str | Path, verbose: int = 2) -> dict:
    """Trains the demo classifier into OUT/run; returns its metrics, the bag-of-words
    baseline's accuracy and the model's answers to `DEMO_SENTENCES`."""
    from keras_seq.pipelines.evaluate import load_model
    from keras_seq.pipelines.vocab import TextEncoder

    out = Path(out)
    data = write_corpus(out / "data")
    logger.info("generated the review corpus in %s (word order decides the label)", data)
    config = load_config(DEMO_CONFIG, [f'data.source="{data}"'])
    metrics = train_run(config, out / "run", verbose=verbose, overwrite=True)
    run = RunDirectory(out / "run")
    model = load_model(run.model)
    encoder = TextEncoder(run.path)
    labels = read_labels(run.file(get_task(config["task"]).label_file))
    ids = encoder.encode(tf.constant(DEMO_SENTENCES)).to_tensor().numpy()
    probabilities = np.asarray(model(ids, training=False))
    metrics["bag_of_words_accuracy"] = bag_of_words_accuracy(data, encoder, labels)
    metrics["samples"] = [
        {"text": t, "label": labels[int(p.argmax())], "probability": float(p.max())}
        for t, p in zip(DEMO_SENTENCES, probabilities)
    ]
    return metrics


def bag_of_words_accuracy(data: Path, encoder, labels: list[str]) -> float:
    """Logistic regression on word counts: what word order adds, by contrast."""
    import json

    import keras

    def load(split: str):
        rows = [json.loads(line) for line in (data / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()]
        ids = encoder.encode(tf.constant([r["text"] for r in rows])).to_tensor().numpy()
        counts = np.zeros((len(rows), len(encoder.vocab)), "float32")
        np.add.at(counts, (np.repeat(np.arange(len(rows)), ids.shape[1]), ids.ravel()), 1.0)
        counts[:, 0] = 0.0
        return counts, np.array([labels.index(r["label"]) for r in rows])

    x, y = load("train")
    x_test, y_test = load("test")
    model = keras.Sequential([keras.Input((x.shape[1],)), keras.layers.Dense(len(labels), activation="softmax")])
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="sparse_categorical_crossentropy")
    model.fit(x, y, epochs=20, batch_size=256, verbose=0)
    return float(np.mean(model.predict(x_test, verbose=0).argmax(-1) == y_test))
