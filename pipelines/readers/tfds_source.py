"""TFDS data sets by name (``tfds:imdb_reviews``, ``tfds:tiny_shakespeare``,
``tfds:conll2003``, ``tfds:universal_dependencies/en_ewt``), through
``tensorflow_datasets``' own loading code. Their train / validation / test splits are used
as they are (a set without a validation split holds out of train, as a folder does)."""

from __future__ import annotations

from collections.abc import Iterator

from keras_seq.pipelines.readers.errors import ReaderError

# name -> (task, text feature (tokens for tag sets), label feature (one per token for tag
# sets), the set's name for its validation split or None)
KNOWN = {
    "imdb_reviews": ("classify", "text", "label", None),
    "tiny_shakespeare": ("lm", "text", None, "validation"),
    "conll2003": ("tag", "tokens", "ner", "dev"),
    "universal_dependencies/en_ewt": ("tag", "tokens", "upos", "dev"),
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
        raise RuntimeError(
            f"tfds:{name} could not be downloaded or prepared: {type(error).__name__}: {error}"
        ) from error


def iter_tfds(name: str, split: str, data_dir: str | None = None) -> Iterator[tuple]:
    """Classification sets yield (text, label name); tag sets (tokens, tags); LM sets text."""
    import tensorflow_datasets as tfds

    if name not in KNOWN:
        raise ValueError(f"tfds:{name} is not supported; known: {sorted(KNOWN)}")
    _, text_key, label_key, validation = KNOWN[name]
    builder = tfds.builder(name, data_dir=data_dir)
    builder.download_and_prepare()
    dataset = builder.as_dataset(split=validation if split == "validation" else split, shuffle_files=False)
    feature = builder.info.features[label_key] if label_key else None
    label_names = getattr(getattr(feature, "feature", feature), "names", None)  # Sequence(ClassLabel) for tags

    def text(value) -> str:
        return value.decode("utf-8", errors="replace")

    for number, example in enumerate(tfds.as_numpy(dataset), 1):
        if not isinstance(example[text_key], bytes):  # a Sequence(Text) feature: tokens, with a tag per token
            tokens, tags = [text(t) for t in example[text_key]], [label_names[int(i)] for i in example[label_key]]
            if len(tokens) != len(tags):
                raise ReaderError(
                    f"tfds:{name}/{split}", number, f"{len(tokens)} tokens but {len(tags)} '{label_key}' tags"
                )
            yield tokens, tags
        elif label_key:
            yield text(example[text_key]), label_names[int(example[label_key])]
        else:
            yield text(example[text_key])


def has_validation_split(name: str) -> bool:
    tfds_task(name)  # refuses an unknown name
    return KNOWN[name][3] is not None


def tfds_task(name: str) -> str:
    if name not in KNOWN:
        raise ValueError(f"tfds:{name} is not supported; known: {sorted(KNOWN)}")
    return KNOWN[name][0]
