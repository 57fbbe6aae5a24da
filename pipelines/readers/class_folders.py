"""Class-folder corpora: ``ROOT/{train,test}/<label>/<file>.txt`` (the aclImdb
layout), from the extracted folder or straight from the ``.tar.gz`` archive."""

from __future__ import annotations

import tarfile
from collections.abc import Iterator
from pathlib import Path

from keras_seq.pipelines.readers.errors import ReaderError, decode_utf8

# aclImdb has an unlabelled `unsup` folder and stray files; only these count.
DEFAULT_LABELS = ("neg", "pos")


def is_archive(path: Path) -> bool:
    return path.name.endswith((".tar.gz", ".tgz", ".tar"))


def has_split_folders(path: Path) -> bool:
    """A folder laid out as ROOT/train/<label>/ (or ROOT/*/train/<label>/): class folders, not split files."""
    if not path.is_dir():
        return False
    try:
        train = _split_root(path, "train")
    except FileNotFoundError:
        return False
    return any(child.is_dir() for child in train.iterdir())


def _split_root(root: Path, split: str) -> Path:
    """The folder holding the label folders: ROOT/split, or ROOT/*/split
    (an archive extracted as aclImdb/...)."""
    for candidate in [root / split, *sorted(p / split for p in root.iterdir() if p.is_dir())]:
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"no '{split}' folder under {root}")


def iter_class_folder(
    path: str | Path, split: str, labels: tuple[str, ...] = DEFAULT_LABELS
) -> Iterator[tuple[str, str]]:
    """Yields (text, label) in a deterministic order (label, then file name)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such corpus: {path}")
    if is_archive(path):
        yield from _iter_archive(path, split, labels)
        return
    base = _split_root(path, split)
    found = False
    for label in labels:
        folder = base / label
        if not folder.is_dir():
            continue
        for file in sorted(folder.glob("*.txt")):
            found = True
            data = file.read_bytes()
            yield decode_utf8(data, file), label
    if not found:
        raise ReaderError(base, None, f"no .txt files in label folders {list(labels)}")


def list_class_files(
    path: str | Path, split: str, labels: tuple[str, ...] = DEFAULT_LABELS
) -> tuple[list[str], list[str]]:
    """File paths and labels of an extracted class-folder corpus (for tf.data)."""
    base = _split_root(Path(path), split)
    files, names = [], []
    for label in labels:
        for file in sorted((base / label).glob("*.txt")):
            files.append(str(file))
            names.append(label)
    return files, names


def _iter_archive(path: Path, split: str, labels: tuple[str, ...]) -> Iterator[tuple[str, str]]:
    wanted = set(labels)
    found = False
    members: list[tuple[str, str, bytes]] = []
    try:
        # Streaming mode: one pass over the compressed archive, no extraction.
        with tarfile.open(path, "r|*") as archive:
            for member in archive:
                parts = member.name.split("/")
                if not member.isfile() or len(parts) < 3 or not parts[-1].endswith(".txt"):
                    continue
                if parts[-3] != split or parts[-2] not in wanted:
                    continue
                data = archive.extractfile(member).read()
                members.append((parts[-2], member.name, data))
                found = True
    except tarfile.TarError as error:
        raise ReaderError(path, None, f"not a readable tar archive ({error})") from None
    if not found:
        raise ReaderError(path, None, f"no '{split}/<label>/*.txt' members for labels {sorted(wanted)}")
    # The archive's own order is arbitrary; sort as the folder reader does.
    for label, name, data in sorted(members, key=lambda m: (labels.index(m[0]), m[1].rsplit("/", 1)[-1])):
        yield decode_utf8(data, f"{path}!{name}"), label
