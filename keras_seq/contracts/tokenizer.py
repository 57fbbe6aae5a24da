"""The tokenizer contract: ``tokenizer.json`` and the constants of the rules.

The rules themselves (``RULES_VERSION`` names them) are implemented twice and
documented once, in `keras_seq.pipelines.tokenize` (core ``tf.strings`` ops,
inside SavedModels) and `keras_seq.serving.tokenizer_twin` (pure Python, beside ONNX
Runtime); both take the spec and the patterns below from here, and a test
compares their ids byte for byte on real corpora.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from keras_seq.contracts.files import ContractError, check_type, read_json_object, write_json

TOKENIZER_FILE = "tokenizer.json"
RULES_VERSION = 1
PAD, UNK = "<PAD>", "<UNK>"
PAD_ID, UNK_ID = 0, 1
# Rule 3's patterns, spelled once for both twins (TF's RE2 and Python's re agree on them).
BR_PATTERN = r"<[bB][rR][ \t\n\v\f\r]*/?>"
PUNCT_PATTERN = r"([!-/:-@\[-`{-~])"
SPACE_PATTERN = r"[ \t\n\v\f\r]+"


def valid_text(text: str) -> str:
    """Rule 1 for a Python str: lone surrogates (JSON may carry "\\ud800") are not
    valid UTF-8, so each becomes U+FFFD, as invalid bytes do. Client, server and
    CLI all send and read text through this."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", errors="surrogatepass").decode("utf-8", errors="replace")


def word_window(max_len: int) -> int:
    """Rule 5's bounded work at word level: both twins first split only the
    `word_window(max_len)` code points at the kept end of the text, and use
    that split when it holds at least ``max_len + WINDOW_MARGIN`` tokens (the
    text is longer than the window); otherwise they split the whole text.
    The margin covers the tokens a cut can change (a word cut in two, a
    ``<br />`` cut into "<", "br", "/"), so the kept tokens are the same as
    without the window -- but a 20 MB request no longer becomes millions of
    tokens before all but `max_len` of them are dropped."""
    return WINDOW_CHARS_PER_TOKEN * (max_len + WINDOW_MARGIN)


WINDOW_CHARS_PER_TOKEN = 64
WINDOW_MARGIN = 4

LEVELS = ("word", "char")
TRUNCATE_SIDES = ("tail", "head")
_WHAT = "the tokenizer contract"
_REQUIRED = ("level", "vocab_file", "rules_version")  # fields added later default for older files


@dataclass
class TokenizerSpec:
    """What `tokenizer.json` holds: everything needed to reproduce the ids."""

    level: str = "word"  # "word" | "char"
    lower: bool = True
    max_len: int | None = None
    truncate: str = "tail"  # "tail" | "head"
    vocab_file: str = "vocab.txt"
    char_vocab_file: str | None = None  # set: words also give character ids (rule 6)
    max_word_len: int = 20
    lower_words: bool = False  # rule 7
    zero_digits: bool = False  # rule 7
    pad_id: int = PAD_ID
    unk_id: int = UNK_ID
    rules_version: int = RULES_VERSION
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.validate(Path(TOKENIZER_FILE))

    def validate(self, path: Path) -> None:
        """Raises ContractError naming `path` and the field at fault."""
        types = {
            "level": (str,),
            "lower": (bool,),
            "max_len": (int, type(None)),
            "truncate": (str,),
            "vocab_file": (str,),
            "char_vocab_file": (str, type(None)),
            "max_word_len": (int,),
            "lower_words": (bool,),
            "zero_digits": (bool,),
            "pad_id": (int,),
            "unk_id": (int,),
            "rules_version": (int,),
            "extra": (dict,),
        }
        for key, allowed in types.items():
            check_type(path, key, getattr(self, key), allowed, _WHAT)
        if self.rules_version != RULES_VERSION:
            raise ContractError(
                f"{path}: tokenizer rules version {self.rules_version} is not supported by this "
                f"version of keras-seq (rules version {RULES_VERSION})"
            )
        if self.level not in LEVELS:
            raise ContractError(f"{path}: field 'level' must be one of {LEVELS}; found {self.level!r}")
        if self.truncate not in TRUNCATE_SIDES:
            raise ContractError(f"{path}: field 'truncate' must be one of {TRUNCATE_SIDES}; found {self.truncate!r}")
        if self.max_len is not None and self.max_len <= 0:
            raise ContractError(f"{path}: field 'max_len' must be a positive integer or null; found {self.max_len!r}")
        if self.max_word_len <= 0:
            raise ContractError(f"{path}: field 'max_word_len' must be a positive integer; found {self.max_word_len!r}")
        if (self.pad_id, self.unk_id) != (PAD_ID, UNK_ID):
            raise ContractError(f"{path}: pad_id/unk_id must be {PAD_ID}/{UNK_ID}; found {self.pad_id}/{self.unk_id}")
        for key in ("vocab_file", "char_vocab_file"):
            name = getattr(self, key)
            if name is not None and (not name or Path(name).name != name):
                raise ContractError(f"{path}: field '{key}' must be a file name beside it; found {name!r}")

    @property
    def has_word_keys(self) -> bool:
        """Whether rule 7 makes vocabulary keys differ from the tokens."""
        return self.level == "word" and (self.lower_words or self.zero_digits)

    def save(self, directory: str | Path) -> Path:
        return write_json(Path(directory) / TOKENIZER_FILE, dict(sorted(asdict(self).items())))

    @classmethod
    def load(cls, path: str | Path) -> TokenizerSpec:
        """Reads and validates ``tokenizer.json`` (a file, or the folder holding it)."""
        path = Path(path)
        if path.is_dir():
            path = path / TOKENIZER_FILE
        data = read_json_object(path, _WHAT)
        unknown = sorted(set(data) - {f.name for f in fields(cls)})
        if unknown:
            raise ContractError(f"{path}: unknown field(s) {unknown} ({_WHAT})")
        missing = [k for k in _REQUIRED if k not in data]
        if missing:
            raise ContractError(f"{path}: missing field(s) {missing} ({_WHAT})")
        spec = cls.__new__(cls)
        for f in fields(cls):
            default = f.default_factory() if callable(f.default_factory) else f.default  # type: ignore[misc]
            setattr(spec, f.name, data.get(f.name, default))
        spec.validate(path)
        return spec
