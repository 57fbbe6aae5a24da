"""Pretrained word vectors in the common formats, aligned with a vocabulary (``model.vectors``).

Formats, found from the file itself (gzip too, by a ``.gz`` name):

* text, one ``word v1 ... vD`` per line -- GloVe (no header), word2vec text and fastText ``.vec``
  (a ``count dim`` header line). The vector is a line's last D fields and the word the rest, so
  tokens holding spaces (GloVe 840B has them) are read whole; D comes from the header, or from
  the commonest field count of the first lines;
* word2vec binary (``count dim`` header, then per word its UTF-8 bytes, a space and D
  little-endian float32s);
* a fastText ``.bin`` model is not a vector file: one line says to use its ``.vec``.

A vocabulary word takes the file's vector for the same word, else for its lower-cased form,
else for its digit-normalised form (digits and word2vec's ``#`` as ``0``: ``1996`` and ``##96``
meet). `VectorCoverage` counts each kind. When the file's size D differs from ``embed_dim``,
``model.vectors_fit = "error"`` (default) refuses in one line and ``"pca"`` keeps the
``embed_dim`` leading principal components of the vectors found (``embed_dim`` < D).
"""

from __future__ import annotations

import collections
import gzip
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from keras_seq.contracts.vocab import Vocabulary
from keras_seq.pipelines.tokenize import PAD_ID, UNK_ID

FASTTEXT_BIN_MAGIC = 793712314  # the int32 a fastText model file starts with
_DIGITS = re.compile(r"[0-9#]")
_SAMPLE_LINES = 100


@dataclass
class VectorCoverage:
    """How the vocabulary's words (PAD and UNK aside) found their vectors."""

    words: int
    exact: int = 0
    lower_cased: int = 0
    digits: int = 0
    file_words: int = 0
    file_dim: int = 0

    @property
    def found(self) -> int:
        return self.exact + self.lower_cased + self.digits

    @property
    def fraction(self) -> float:
        return self.found / max(1, self.words)

    def __str__(self) -> str:
        return (
            f"{self.found} of {self.words} words ({100 * self.fraction:.1f}%): {self.exact} exact, "
            f"{self.lower_cased} lower-cased, {self.digits} by digit shape; {self.file_words} vectors of "
            f"{self.file_dim} in the file"
        )


def digit_shape(word: str) -> str:
    return _DIGITS.sub("0", word.lower())


def _open_bytes(path: Path):
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def read_word_vectors(path: str | Path) -> tuple[int, Iterator[tuple[str, np.ndarray]]]:
    """(dim, the file's (word, vector) pairs, streamed) in any of the formats above; a malformed
    entry is one line naming the file and its line (or entry) number."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing (model.vectors)")
    with _open_bytes(path) as handle:
        head = handle.read(1 << 16)
    if len(head) >= 4 and int.from_bytes(head[:4], "little") == FASTTEXT_BIN_MAGIC:
        raise ValueError(f"{path}: a fastText .bin model, not a vector file; use its .vec file (text)")
    if not head.strip():
        raise ValueError(f"{path}: the vector file is empty")
    first, _, rest = head.partition(b"\n")
    header = first.split()
    has_header = len(header) == 2 and all(p.isdigit() for p in header)
    if has_header and _is_binary(rest):
        return int(header[1]), _binary_vectors(path, int(header[0]), int(header[1]))
    dim = int(header[1]) if has_header else _text_dim(path, head)
    return dim, _text_vectors(path, dim, skip_header=has_header)


def _is_binary(sample: bytes) -> bool:
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as error:  # a cut at the sample's end is still text
        return error.start < len(sample) - 4
    return b"\0" in sample


def _text_dim(path: Path, head: bytes) -> int:
    lines = head.decode("utf-8", "replace").splitlines()[:_SAMPLE_LINES]
    counts = collections.Counter(len(line.rstrip(" ").split(" ")) for line in lines if line.strip())
    fields = counts.most_common(1)[0][0]
    if fields < 2:
        raise ValueError(f"{path}:1: expected 'word v1 v2 ...' (GloVe, word2vec or fastText text)")
    return fields - 1


def _text_vectors(path: Path, dim: int, skip_header: bool) -> Iterator[tuple[str, np.ndarray]]:
    with _open_bytes(path) as handle:
        for number, raw in enumerate(handle, 1):
            if number == 1 and skip_header:
                continue
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                raise ValueError(f"{path}:{number}: not UTF-8 (byte {error.start})") from None
            if not line.strip():
                continue
            parts = line.rstrip("\r\n").rstrip(" ").split(" ")
            if len(parts) < dim + 1:
                raise ValueError(f"{path}:{number}: expected a word and {dim} values; the line has {len(parts)} fields")
            try:
                vector = np.asarray(parts[-dim:], dtype="float32")
            except ValueError:
                raise ValueError(f"{path}:{number}: a vector value is not a number") from None
            yield " ".join(parts[:-dim]), vector


def _binary_vectors(path: Path, count: int, dim: int) -> Iterator[tuple[str, np.ndarray]]:
    size = 4 * dim
    with _open_bytes(path) as handle:
        handle.readline()
        for number in range(1, count + 1):
            word = bytearray()
            while (byte := handle.read(1)) not in (b" ", b""):
                word += byte
            vector = handle.read(size)
            if len(vector) < size:
                raise ValueError(f"{path}: entry {number} of {count} is cut short (a truncated word2vec binary file)")
            try:
                text = word.strip(b"\n").decode("utf-8")
            except UnicodeDecodeError:
                text = word.strip(b"\n").decode("utf-8", "replace")  # word2vec cuts long words mid-character
            yield text, np.frombuffer(vector, dtype="<f4").astype("float32")


def align_vectors(
    path: str | Path, vocab: Vocabulary, dim: int | None = None, seed: int = 0, fit: str = "error"
) -> tuple[np.ndarray, VectorCoverage]:
    """The embedding matrix for `vocab` from a vector file, and how it was covered. Rows of words
    the file lacks are drawn from N(0, 0.1); the padding row is zero. `dim`: the embedding's size
    (None: the file's); `fit`: "error" or "pca" when they differ (module docstring)."""
    if fit not in ("error", "pca"):
        raise ValueError(f"model.vectors_fit must be 'error' or 'pca'; got {fit!r}")
    file_dim, vectors = read_word_vectors(path)
    dim = dim or file_dim
    if dim != file_dim and (fit == "error" or dim > file_dim):
        raise ValueError(
            f"{path}: the vectors have {file_dim} values and model.embed_dim is {dim}: set model.embed_dim = "
            f"{file_dim}" + (', or model.vectors_fit = "pca" to keep the leading components' if dim < file_dim else "")
        )
    words = {w: i for w, i in vocab.index.items() if i > UNK_ID}
    lowered: dict[str, list[int]] = collections.defaultdict(list)
    shapes: dict[str, list[int]] = collections.defaultdict(list)
    for word, i in words.items():
        lowered[word.lower()].append(i)
        shapes[digit_shape(word)].append(i)
    kind: dict[int, int] = {}  # id -> 0 exact, 1 lower-cased, 2 digit shape (the best match so far)
    rows: dict[int, np.ndarray] = {}
    coverage = VectorCoverage(words=len(words), file_dim=file_dim)
    for word, vector in vectors:
        coverage.file_words += 1
        matches = [(words[word], 0)] if word in words else []
        matches += [(i, 1) for i in lowered.get(word.lower(), ())]
        matches += [(i, 2) for i in shapes.get(digit_shape(word), ())]
        for i, how in matches:
            if how < kind.get(i, 3):
                kind[i], rows[i] = how, vector
    counts = collections.Counter(kind.values())
    coverage.exact, coverage.lower_cased, coverage.digits = counts[0], counts[1], counts[2]
    rng = np.random.default_rng(seed)
    matrix = rng.normal(0.0, 0.1, size=(len(vocab), dim)).astype("float32")
    if rows:
        found = np.stack(list(rows.values()))
        if dim < file_dim:  # PCA: the leading components of the vectors found
            if len(found) <= dim:
                raise ValueError(
                    f"{path}: {len(found)} vectors matched the vocabulary, too few for {dim} principal components"
                )
            centred = found - found.mean(axis=0)
            _, _, components = np.linalg.svd(centred, full_matrices=False)
            found = centred @ components[:dim].T
        matrix[list(rows)] = found
    matrix[PAD_ID] = 0.0
    return matrix, coverage
