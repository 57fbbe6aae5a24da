"""Input pipeline rate vs. the rate the reference model consumes it, in one run.

    python -m benchmarks.bench_pipeline [--data ../shared/data] [--max-len 400]

Producer: IMDB train (word level, top-20k vocabulary, max length 400) through
the real pipeline -- archive reader, TF tokenizer, lookup, cache, seeded
shuffle, length bucketing, prefetch -- measured on a cached epoch (what every
epoch after the first costs) and on the first, uncached epoch.
Consumer: the foundation benchmark's reference model (keras_seq.LSTM(256) on
128 features, B=64, T=100, forward + backward + Adam), tokens/s.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    p.add_argument("--max-len", type=int, default=400)
    args = p.parse_args(argv)

    import keras

    import keras_seq
    from keras_seq.pipelines.datasets import (
        LabelLookup,
        batched,
        build_label_vocab,
        encoded_dataset,
        prepare_text_dir,
        split_lengths,
    )
    from keras_seq.pipelines.readers import open_corpus
    from keras_seq.pipelines.tokenize import TokenizerSpec

    corpus = open_corpus(Path(args.data) / "imdb" / "aclImdb_v1.tar.gz", "classify")
    with tempfile.TemporaryDirectory() as tmp:
        encoder = prepare_text_dir(corpus, tmp, TokenizerSpec(level="word", max_len=args.max_len))
        labels = LabelLookup(build_label_vocab(corpus, tmp))
        train = encoded_dataset(corpus, "train", encoder, labels)
        lengths = split_lengths(train)
        ds = batched(train, lengths, tokens_per_batch=int(64 * lengths.mean()), max_batch=256, seed=0)

        def epoch() -> tuple[float, int]:
            start, tokens = time.perf_counter(), 0
            for x, _ in ds:
                tokens += int(np.count_nonzero(x.numpy()))
            return time.perf_counter() - start, tokens

        first_s, tokens = epoch()
        cached_s, _ = epoch()

    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 100, 128)).astype("float32")
    y = rng.normal(size=(64, 1)).astype("float32")
    inputs = keras.Input((100, 128))
    model = keras.Model(inputs, keras.layers.Dense(1)(keras_seq.LSTM(256)(inputs)))
    model.compile(optimizer="adam", loss="mse")
    for _ in range(3):
        model.train_on_batch(x, y)
    start = time.perf_counter()
    for _ in range(10):
        model.train_on_batch(x, y)
    consumer = 64 * 100 * 10 / (time.perf_counter() - start)

    print(f"pipeline, first epoch (read + tokenize): {tokens / first_s:12,.0f} tokens/s ({first_s:.1f} s)")
    print(f"pipeline, cached epoch:                  {tokens / cached_s:12,.0f} tokens/s ({cached_s:.1f} s)")
    print(f"consumer LSTM(256), B=64, T=100:         {consumer:12,.0f} tokens/s")
    cached, first = tokens / cached_s / consumer, tokens / first_s / consumer
    print(f"ratio pipeline/consumer: cached {cached:.1f}x, first epoch {first:.1f}x")


if __name__ == "__main__":
    main()
