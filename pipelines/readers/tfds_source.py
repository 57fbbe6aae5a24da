"""TFDS data sets by name (``tfds:imdb_reviews``, ``tfds:tiny_shakespeare``, ...),
through ``tensorflow_datasets``' own loading code."""
from __future__ import annotations

from typing import Iterator

# name -> (task, text feature, label feature)
KNOWN = {
    "imdb_reviews": ("classify", "text", "label"),
    "tiny_shakespeare": ("lm", "text", None),
}


def prepare(name: str, data_dir: str | None = None) -> None:
    """Downloads and prepares the data set now (not lazily inside a tf.data
    iterator), so a missing network or package is reported plainly."""
    import tensorflow_datasets as tfds

    if name not in KNOWN:
        raise ValueError(f"tfds:{name} is not supported; known: {sorted(KNOWN)}")
    try:
        tfds.builder(name, data_dir=data_dir).download_and_prepare()
    except Exception as error:  # network, disk or missing-package failures inside tfds
        raise RuntimeError(f"tfds:{name} could not be downloaded or prepared: {type(error).__name__}: {error}") from error


def iter_tfds(name: str, split: str, data_dir: str | None = None) -> Iterator[tuple]:
    """Classification sets yield (text, label name); LM sets yield text."""
    import tensorflow_datasets as tfds

    if name not in KNOWN:
        raise ValueError(f"tfds:{name} is not supported; known: {sorted(KNOWN)}")
    task, text_key, label_key = KNOWN[name]
    builder = tfds.builder(name, data_dir=data_dir)
    builder.download_and_prepare()
    dataset = builder.as_dataset(split=split, shuffle_files=False)
    label_names = builder.info.features[label_key].names if label_key else None
    for example in tfds.as_numpy(dataset):
        text = example[text_key].decode("utf-8", errors="replace")
        if label_key:
            yield text, label_names[int(example[label_key])]
        else:
            yield text


def tfds_task(name: str) -> str:
    if name not in KNOWN:
        raise ValueError(f"tfds:{name} is not supported; known: {sorted(KNOWN)}")
    return KNOWN[name][0]
