"""`open_corpus(SOURCE, task)`: one entry point for every reader.

SOURCE is a path (file, folder or archive) or ``tfds:NAME``. Splits are named
train / validation / test; a source without a split of that name (a single
file) serves every split from the same file.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from keras_seq.pipelines.readers import tfds_source
from keras_seq.tasks import Task, get_task

_SPLIT_FILES = {"train": "train", "validation": "dev", "test": "test"}
_TABLE_SUFFIXES = (".csv", ".tsv", ".tab", ".jsonl", ".json", ".ndjson")


@dataclass
class Corpus:
    source: str
    task: str
    options: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.kind: Task = get_task(self.task)  # what each split's examples are (the task decides the reader)
        if self.source.startswith("tfds:"):
            tfds_source.prepare(self.source[5:], self.options.get("data_dir"))
        elif not Path(self.source).exists():
            raise FileNotFoundError(f"no such data source: {self.source}")

    def has_validation_split(self) -> bool:
        """Whether the source has its own validation data (a dev file, or the
        LM's 90/10 split); if not, validation is held out of train."""
        if self.kind.own_validation:
            return True
        if self.source.startswith("tfds:"):
            return False
        path = Path(self.source)
        return path.is_dir() and any(p.is_file() and _SPLIT_FILES["validation"] in p.name for p in path.iterdir())

    def examples(self, split: str = "train") -> Iterator:
        """classify: (text, label); tag: (tokens, tags); lm: the split's text (one item).

        Without a validation split of its own, every `holdout_every`-th
        training example (default 10th) is the validation split and is left
        out of "train"."""
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
            yield from self.kind.from_tfds(tfds_source.iter_tfds(name, split, self.options.get("data_dir")))
            return
        yield from self.kind.read_file(self, Path(self.source), split)

    def split_file(self, path: Path, split: str) -> Path:
        """A folder of split files (``*train*``, ``*dev*``, ``*test*``) or one file."""
        if path.is_file():
            return path
        key = _SPLIT_FILES.get(split, split)
        matches = sorted(p for p in path.iterdir() if p.is_file() and key in p.name and p.suffix != ".md"
                         and "LICENSE" not in p.name)
        if not matches:
            raise FileNotFoundError(f"no '{key}' file in {path}")
        return matches[0]

    @staticmethod
    def has_tables(folder: Path) -> bool:
        """A folder of split tables (train.csv, dev.jsonl, ...) rather than class folders."""
        return any(p.is_file() and p.suffix in _TABLE_SUFFIXES for p in folder.iterdir())


def open_corpus(source: str | Path, task: str, **options) -> Corpus:
    return Corpus(str(source), task, options)
