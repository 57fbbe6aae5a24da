"""`keras-seq demo`: the main job on built-in data, end to end, in about a minute."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import tensorflow as tf

from pipelines.config import load_config
from pipelines.synthetic import DEMO_SENTENCES, write_corpus
from pipelines.train import train_run

DEMO_CONFIG = Path(__file__).resolve().parent / "configs" / "demo.toml"


def run_demo(out: str | Path) -> dict:
    import keras

    from pipelines.vocab import TextEncoder, Vocabulary

    out = Path(out)
    start = time.perf_counter()
    data = write_corpus(out / "data")
    print(f"generated the review corpus in {data} (word order decides the label)")
    config = load_config(DEMO_CONFIG, [f'data.source="{data}"'])
    metrics = train_run(config, out / "run", verbose=2)
    run = out / "run"
    model = keras.saving.load_model(run / "model.keras", compile=False)
    encoder = TextEncoder(run)
    labels = Vocabulary.load(run / "labels.txt", level="label").tokens
    ids = encoder.encode(tf.constant(DEMO_SENTENCES)).to_tensor().numpy()
    probs = np.asarray(model(ids, training=False))
    baseline = bag_of_words_accuracy(data, encoder, labels)
    print(f"\ntest accuracy {metrics['test']['accuracy']:.3f} on {metrics['test']['examples']} generated reviews; "
          f"a bag-of-words model on the same data: {baseline:.3f} ({time.perf_counter() - start:.0f} s in all)")
    for sentence, p in zip(DEMO_SENTENCES, probs):
        print(f"  {labels[int(p.argmax())]} {p.max():.2f}  {sentence}")
    metrics["bag_of_words_accuracy"] = baseline
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
