"""Vocabulary and label files: plain text, one entry per line, line number = id
(so TF can read them as SavedModel assets with a ``TextFileInitializer``).

* word vocabulary and label files: the token itself (tokens never hold line breaks);
* char vocabulary: ``<code point>\\t<printable form>`` -- the code point is the
  key, so newline and tab characters are representable; lines 0 and 1 hold
  ``-1`` / ``-2`` for padding and ``<UNK>``.

Word and char vocabularies, and tag files, reserve id 0 for padding and 1 for
``<UNK>``; target vocabularies also reserve 2 and 3 for ``<BOS>`` and ``<EOS>``;
class label files reserve nothing.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from keras_seq.contracts.files import ContractError, read_text_file
from keras_seq.contracts.tokenizer import PAD, PAD_ID, UNK, UNK_ID

LEVELS = ("word", "char", "label")
# Target vocabularies of encoder-decoders (targets.txt) reserve 0-3: <PAD>, <UNK>, then these.
BOS, EOS = "<BOS>", "<EOS>"
BOS_ID, EOS_ID = 2, 3
CHAR_RESERVED_KEYS = {PAD: -1, UNK: -2}
_STRESSED = re.compile(r"^([A-Z]+)[0-2]$")  # an ARPAbet vowel with its stress digit: AH0, EY1


def without_stress(phones: list[str]) -> list[str]:
    """ARPAbet phones without their stress digits (AH0 -> AH); other tokens unchanged."""
    return [m.group(1) if (m := _STRESSED.match(p)) else p for p in phones]


def has_stress(phones: list[str]) -> bool:
    """Whether any phone carries an ARPAbet stress digit."""
    return any(_STRESSED.match(p) for p in phones)


def stress_classes(tokens: list[str]) -> list[int]:
    """Per target id, its class under stress-free comparison: the id of the first token
    with the same stress-free form (AH0, AH1, AH2 -> the id of whichever comes first);
    every other token is its own class. For `keras_seq.decoding.merge_classes`."""
    first: dict[str, int] = {}
    return [first.setdefault(plain, i) for i, plain in enumerate(without_stress(list(tokens)))]


class Vocabulary:
    """An ordered token list; ``tokens[i]`` has id ``i``."""

    def __init__(self, tokens: list[str], level: str = "word") -> None:
        if level not in LEVELS:
            raise ValueError(f"vocabulary `level` must be one of {LEVELS}; received {level!r}.")
        if len(set(tokens)) != len(tokens):
            raise ValueError("vocabulary tokens must be unique")
        self.tokens = list(tokens)
        self.level = level
        self.index = {t: i for i, t in enumerate(self.tokens)}

    def __len__(self) -> int:
        return len(self.tokens)

    @property
    def reserved(self) -> bool:
        return self.tokens[:2] == [PAD, UNK]

    @classmethod
    def build(
        cls,
        counts: Counter,
        max_size: int | None = None,
        min_count: int = 1,
        level: str = "word",
        reserved: bool = True,
    ) -> Vocabulary:
        """Top `max_size` entries (reserved ids included) with count >= `min_count`;
        ties are broken by the token's code points, so the result is deterministic."""
        if max_size is not None and max_size < (3 if reserved else 1):
            raise ValueError(f"vocabulary `max_size` is too small: {max_size}")
        kept = sorted(
            (t for t, c in counts.items() if c >= min_count and t not in (PAD, UNK)), key=lambda t: (-counts[t], t)
        )
        head = [PAD, UNK] if reserved else []
        if max_size is not None:
            kept = kept[: max_size - len(head)]
        return cls(head + kept, level)

    def ids(self, tokens: Iterable[str]) -> list[int]:
        unk = UNK_ID if self.reserved else None
        out = []
        for t in tokens:
            i = self.index.get(t, unk)
            if i is None:
                raise ValueError(f"label {t!r} is not in the label vocabulary {self.tokens}")
            out.append(UNK_ID if (self.reserved and i == PAD_ID) else i)
        return out

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        if self.level == "char":
            bad = [t for t in self.tokens if len(t) != 1 and t not in CHAR_RESERVED_KEYS]
            if bad:
                raise ValueError(f"char vocabulary tokens must be single characters: {bad[:5]!r}")
        else:
            bad = [t for t in self.tokens if not t or any(c in t for c in "\n\r")]
            if bad:
                raise ValueError(f"{self.level} vocabulary tokens cannot be empty or hold line breaks: {bad[:5]!r}")
        with open(path, "w", encoding="utf-8", newline="\n") as f:
            for token in self.tokens:
                if self.level == "char":
                    key = CHAR_RESERVED_KEYS.get(token)
                    key = ord(token) if key is None else key
                    f.write(f"{key}\t{token.encode('unicode_escape').decode('ascii') if key >= 0 else token}\n")
                else:
                    f.write(token + "\n")
        return path

    @classmethod
    def load(cls, path: str | Path, level: str = "word") -> Vocabulary:
        """Reads and checks a vocabulary or label file (one clear line on any fault)."""
        path = Path(path)
        lines = read_text_file(path, f"a {level} vocabulary file").split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        if level == "char":
            reverse = {v: k for k, v in CHAR_RESERVED_KEYS.items()}
            tokens = []
            for n, line in enumerate(lines, 1):
                try:
                    key = int(line.split("\t", 1)[0])
                    tokens.append(reverse[key] if key < 0 else chr(key))
                except (ValueError, KeyError, OverflowError):
                    raise ContractError(f"{path}:{n}: expected '<code point>\\t<char>'") from None
        else:
            tokens = lines
            for n, token in enumerate(tokens, 1):
                if not token or "\r" in token:
                    raise ContractError(f"{path}:{n}: empty entry or stray carriage return")
        if level in ("word", "char") and tokens[:2] != [PAD, UNK]:
            raise ContractError(f"{path}: lines 1-2 must be the reserved {PAD} and {UNK} entries")
        try:
            return cls(tokens, level)
        except ValueError as error:
            raise ContractError(f"{path}: {error}") from None


def read_labels(path: str | Path) -> list[str]:
    """Class or tag names by id from a label file."""
    return Vocabulary.load(path, level="label").tokens
