"""The export directory that ``keras-seq export`` (`keras_seq.export.export`) writes.

EXPORT_DIR/
  export.json                 task, name, version, labels, signatures, opset, tool versions, verification
  savedmodel/NAME/VERSION/    TF Serving layout (vocabularies in assets/, warmup in assets.extra/)
  onnx/model.onnx             native RNN / GRU / LSTM nodes (seq2seq: the encoder)
  onnx/decoder_step.onnx      seq2seq only: one decoder step (`DECODER_STEP_FILE`)
  onnx/model_text.onnx        with --text-in: raw strings in, the answer out (`TEXT_GRAPH_FILE`)
  onnx/model.json             what the ONNX-side predictor needs beside the graph (`ONNX_INFO_FILE`)
  onnx/tokenizer.json         the tokenizer contract, with the vocabulary and label files it names
  onnx/signature_def.json     the SavedModel's signatures as TF Serving's metadata API gives them
  savedmodel/NAME/VERSION/onnx/  the same ONNX half inside each version folder: TF Serving and
                              `keras-seq serve` poll the same numbered folders

``export.json`` and ``model.json`` carry ``format_version``; files written
before it existed read as version 1. Both also list the SHA-256 of the files
they describe (``files``: export.json those of the SavedModel version and of
``onnx/``; model.json those beside it), and every reader checks them when it
loads the export: a corrupted or edited file is named, never silently used.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from keras_seq.contracts.files import ContractError, Directory, check_type, file_in, read_json_object, write_json

EXPORT_FILE = "export.json"
MODEL_CARD_FILE = "MODEL_CARD.md"  # a person's summary beside export.json (keras_seq.export.model_card)
SAVEDMODEL_DIR = "savedmodel"
ONNX_DIR = "onnx"
ONNX_MODEL_FILE = "model.onnx"
ONNX_INFO_FILE = "model.json"
SIGNATURE_DEF_FILE = "signature_def.json"  # {"signature_def": {NAME: SignatureDef as JSON}}
DECODER_STEP_FILE = "decoder_step.onnx"  # seq2seq: one decoder step beside the encoder (model.onnx)
TEXT_GRAPH_FILE = "model_text.onnx"  # export --text-in: the tokenizer inside the graph (onnxruntime-extensions)
FORMAT_VERSION = 1
WARMUP_FILE = "tf_serving_warmup_requests"  # in SAVEDMODEL/VERSION/assets.extra/, as TF Serving reads it

_EXPORT_FIELDS = {
    "task": (str,),
    "kind": (str,),
    "name": (str,),
    "version": (int,),
    "savedmodel": (str,),
    "onnx": (str,),
    "labels": (list, type(None)),
    "labels_file": (str, type(None)),
    "signatures": (dict,),
    "max_len": (int, type(None)),
}
_ONNX_FIELDS = {
    "task": (str,),
    "kind": (str,),
    "output": (str,),
    "inputs": (list,),
    "outputs": (list,),
    "labels_file": (str, type(None)),
}


def _checked(path: Path, data: dict, spec: dict, what: str) -> dict:
    version = data.get("format_version", 1)
    if version != FORMAT_VERSION:
        raise ContractError(
            f"{path}: format_version {version!r} is not supported (this keras-seq reads {FORMAT_VERSION})"
        )
    missing = [k for k in spec if k not in data]
    if missing:
        raise ContractError(f"{path}: missing field(s) {missing} ({what})")
    for key, types in spec.items():
        check_type(path, key, data[key], types, what)
    return data


CHECKSUMS = "files"  # the field: {path relative to the describing file's folder: sha256 hex}


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_checksums(root: Path, folders: list[Path], skip: tuple[str, ...] = ()) -> dict[str, str]:
    """SHA-256 of every file under `folders`, keyed by its path relative to `root`."""
    root = Path(root)
    return {
        p.relative_to(root).as_posix(): sha256_of(p)
        for folder in folders
        for p in sorted(Path(folder).rglob("*"))
        if p.is_file() and p.name not in skip
    }


def check_files(root: Path, data: dict, described_by: Path, under: str = "") -> None:
    """Every file `data`'s checksums list (those under `under`, when given) against its
    bytes; a missing or changed file is one line naming it and the file that lists it."""
    checksums = data.get(CHECKSUMS, {})
    if not isinstance(checksums, dict):
        raise ContractError(f"{described_by}: field '{CHECKSUMS}' must be an object of file checksums")
    for name, digest in checksums.items():
        if under and not name.startswith(under.rstrip("/") + "/"):
            continue
        path = Path(root) / name
        if not path.is_file():
            raise ContractError(f"{path}: missing, but listed in {described_by}")
        if sha256_of(path) != digest:
            raise ContractError(
                f"{path}: does not match its checksum in {described_by} (corrupted or changed "
                "after export); export the run again"
            )


class ExportDirectory(Directory):
    """The paths of one export directory, and its validating readers."""

    info_file = file_in(EXPORT_FILE)
    onnx_dir = file_in(ONNX_DIR)

    def model_dir(self, name: str) -> Path:
        """``savedmodel/NAME``: the folder TF Serving polls for numbered versions."""
        return self.path / SAVEDMODEL_DIR / name

    def info(self) -> dict:
        """``export.json``, checked."""
        if not self.info_file.exists() and not self.path.is_dir():
            raise FileNotFoundError(f"{self.path}: no export there")
        if not self.info_file.exists():
            raise FileNotFoundError(
                f"{self.path}: not an export ({EXPORT_FILE} is missing; write one with `keras-seq export`)"
            )
        data = _checked(
            self.info_file, read_json_object(self.info_file, "the export summary"), _EXPORT_FIELDS, "the export summary"
        )
        if data["labels"] is not None and not all(isinstance(x, str) for x in data["labels"]):
            raise ContractError(f"{self.info_file}: field 'labels' must be a list of strings")
        return data

    def savedmodel(self, info: dict | None = None) -> Path:
        """The exported SavedModel version folder."""
        info = info or self.info()
        path = self.path / info["savedmodel"]
        if not path.is_dir():
            raise FileNotFoundError(f"{self.info_file}: names {info['savedmodel']}, which is missing")
        check_files(self.path, info, self.info_file, under=info["savedmodel"])
        return path


def write_export_info(directory: Path, summary: dict) -> Path:
    """export.json, with the checksums of the SavedModel version and of ``onnx/`` it describes."""
    directory = Path(directory)
    files = file_checksums(directory, [directory / summary["savedmodel"], directory / ONNX_DIR])
    return write_json(directory / EXPORT_FILE, {"format_version": FORMAT_VERSION, **summary, CHECKSUMS: files})


def find_onnx_dir(path: str | Path) -> Path:
    """An export directory or its ``onnx/`` folder -> the folder holding ``model.onnx``."""
    path = Path(path)
    for candidate in (path / ONNX_DIR, path):
        if (candidate / ONNX_MODEL_FILE).exists():
            return candidate
    raise FileNotFoundError(f"{path}: no ONNX export there (expected {path / ONNX_DIR / ONNX_MODEL_FILE})")


def read_onnx_info(onnx_dir: Path) -> dict:
    """``onnx/model.json``, checked (the tokenizer beside it is checked by whoever reads it)."""
    path = Path(onnx_dir) / ONNX_INFO_FILE
    info = _checked(
        path, read_json_object(path, "the ONNX model's description"), _ONNX_FIELDS, "the ONNX model's description"
    )
    export_info = Path(onnx_dir).parent / EXPORT_FILE
    if export_info.is_file() and Path(onnx_dir).name == ONNX_DIR:
        # Inside an export: export.json lists every file of onnx/, model.json included (each hashed once).
        check_files(
            export_info.parent, read_json_object(export_info, "the export summary"), export_info, under=ONNX_DIR
        )
    else:  # a stand-alone onnx/ folder: model.json lists the files beside it
        check_files(onnx_dir, info, path)
    return info


def write_onnx_info(onnx_dir: Path, info: dict) -> Path:
    """model.json, last: with the checksums of the files beside it."""
    files = file_checksums(onnx_dir, [Path(onnx_dir)], skip=(ONNX_INFO_FILE,))
    return write_json(
        Path(onnx_dir) / ONNX_INFO_FILE, {"format_version": FORMAT_VERSION, **info, CHECKSUMS: files}, indent=1
    )
