"""`OnnxPredictor`: raw text in, answers out, with ONNX Runtime and NumPy only.

Reads ``EXPORT_DIR/onnx/``: ``model.onnx``, ``model.json`` (task, label file,
CRF parameters, generation length), ``tokenizer.json`` and the vocabulary
files. Text becomes ids through `serving.text.TextTokenizer`, the pure-Python
twin of the tokenizer inside the SavedModel (byte-identical ids, tested).
Thread-safe: ONNX Runtime sessions may be run from several threads, and
nothing else here holds mutable state.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from serving import answers as A
from serving.text import TextTokenizer

MAX_BATCH = 64  # prompts per generation batch
CHUNK = 16  # texts of similar length run together: less padding through the RNN kernels


def _pad(rows: list[list[int]], width: int | None = None) -> np.ndarray:
    width = max([1, width or 0, *(len(r) for r in rows)])
    out = np.zeros((len(rows), width), np.int64)
    for i, row in enumerate(rows):
        out[i, : len(row)] = row
    return out


def _onnx_dir(export_dir: str | Path) -> Path:
    path = Path(export_dir)
    if (path / "onnx" / "model.onnx").exists():
        return path / "onnx"
    if (path / "model.onnx").exists():
        return path
    raise FileNotFoundError(f"no ONNX export at {path} (expected {path / 'onnx' / 'model.onnx'})")


def in_length_chunks(texts: list, answer, size: int = CHUNK) -> list[dict]:
    """`answer(batch) -> answers` over chunks of texts of similar length, results
    in the input order (answers do not depend on how texts are batched; one
    long text would otherwise pad its whole batch)."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out: list[dict] = [{}] * len(texts)
    for start in range(0, len(texts), size):
        chunk = order[start : start + size]
        for i, result in zip(chunk, answer([texts[i] for i in chunk])):
            out[i] = result
    return out


def check_texts(texts: Sequence) -> list:
    if isinstance(texts, (str, bytes)):
        raise TypeError("`texts` must be a list of strings, not one string")
    for i, text in enumerate(texts):
        if not isinstance(text, (str, bytes)):
            raise TypeError(f"texts[{i}] is {type(text).__name__}, expected a string")
    return list(texts)


class OnnxPredictor:
    def __init__(self, export_dir: str | Path, threads: int | None = None) -> None:
        import onnxruntime as ort

        directory = _onnx_dir(export_dir)
        self.info = json.loads((directory / "model.json").read_text(encoding="utf-8"))
        self.task, self.kind = self.info["task"], self.info["kind"]
        self.tokenizer = TextTokenizer(directory)
        self.labels = None
        if self.info.get("labels_file"):
            self.labels = (directory / self.info["labels_file"]).read_text(encoding="utf-8").splitlines()
        if self.kind == "crf":
            crf = self.info["crf"]
            self.crf = [np.asarray(crf[k], np.float32) for k in ("transitions", "start", "end")]
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(directory / "model.onnx"), options,
                                            providers=["CPUExecutionProvider"])
        self.state_names = [i.name for i in self.session.get_inputs() if i.name.startswith("state_")]
        self.state_sizes = [int(i.shape[1]) for i in self.session.get_inputs() if i.name.startswith("state_")]
        if self.task == "lm":
            self.vocab = self._id_to_token(directory)

    def _id_to_token(self, directory: Path) -> list[str]:
        spec = json.loads((directory / "tokenizer.json").read_text(encoding="utf-8"))
        lines = (directory / spec["vocab_file"]).read_text(encoding="utf-8").split("\n")[:-1]
        if self.tokenizer.level == "char":
            return [chr(int(line.split("\t", 1)[0])) if int(line.split("\t", 1)[0]) >= 0 else "" for line in lines]
        return lines

    # -- public API --------------------------------------------------------------
    def predict(self, texts: Iterable[str | bytes]) -> list[dict]:
        """One answer per text, in order (see `serving.answers` for the shapes)."""
        return in_length_chunks(check_texts(texts), self._predict_batch)

    def generate(self, texts: Iterable[str | bytes], length: int | None = None) -> list[dict]:
        """Greedy continuation of each prompt (language models)."""
        if self.task != "lm":
            raise ValueError(f"generate needs a language model; this export is a {self.task} model")
        texts = check_texts(texts)
        length = int(length or self.info["generate_length"])
        out: list[dict] = []
        for start in range(0, len(texts), MAX_BATCH):
            out += self._generate_batch(texts[start : start + MAX_BATCH], length)
        return out

    # -- per task ----------------------------------------------------------------
    def _predict_batch(self, texts: list) -> list[dict]:
        if self.task == "classify":
            ids, _ = self.tokenizer.encode_batch(texts)
            probabilities = self.session.run(["probabilities"], {"ids": ids})[0]
            return [A.classify_answer(p, self.labels) for p in probabilities]
        if self.task == "tag":
            return self._tag(texts)
        ids, lengths = self.tokenizer.encode_batch(texts)
        logits = self.session.run(["logits"], {"ids": ids, **self._zero_states(len(texts))})[0]
        return A.lm_scores(logits, ids, lengths)

    def tag_scores(self, texts: Iterable[str | bytes]) -> list[np.ndarray]:
        """Taggers: each text's per-token scores (tokens, tags) -- tag probabilities,
        or for CRF taggers the emissions that Viterbi decodes."""
        if self.task != "tag":
            raise ValueError(f"tag_scores needs a tagger; this export is a {self.task} model")
        return in_length_chunks(check_texts(texts), lambda batch: self._tag(batch, raw=True))

    def _tag(self, texts: list, raw: bool = False) -> list:
        tokens = [self.tokenizer.tokens(t) for t in texts]
        feeds = {"ids": _pad([self.tokenizer.lookup(row) for row in tokens])}
        if self.tokenizer.char_vocab is not None:
            words = [self.tokenizer.word_chars(row) for row in tokens]
            width = max([1, *(len(w) for row in words for w in row)])
            chars = np.zeros(feeds["ids"].shape + (width,), np.int64)
            for i, row in enumerate(words):
                for j, word in enumerate(row):
                    chars[i, j, : len(word)] = word
            feeds["chars"] = chars
        scores = self.session.run([self.info["output"]], feeds)[0]
        if raw:
            return [row[: len(row_tokens)] for row_tokens, row in zip(tokens, scores)]
        answers = []
        for row_tokens, row_scores in zip(tokens, scores):
            n = len(row_tokens)
            tag_ids = A.viterbi(row_scores, n, *self.crf) if self.kind == "crf" else row_scores[:n].argmax(-1)
            answers.append(A.tag_answer(row_tokens, tag_ids, self.labels))
        return answers

    def _zero_states(self, batch: int) -> dict:
        return {name: np.zeros((batch, size), np.float32) for name, size in zip(self.state_names, self.state_sizes)}

    def _generate_batch(self, texts: list, length: int) -> list[dict]:
        ids, lengths = self.tokenizer.encode_batch(texts)
        outputs = self.session.run(None, {"ids": ids, **self._zero_states(len(texts))})
        first = outputs[0][np.arange(len(texts)), np.maximum(lengths - 1, 0)]

        def step(tokens, states):
            result = self.session.run(None, {"ids": tokens[:, None].astype(np.int64),
                                             **dict(zip(self.state_names, states))})
            return result[0][:, -1], result[1:]

        generated = A.greedy_tokens(first, step, outputs[1:], length)
        level = self.tokenizer.level
        return [{"continuation": A.join_tokens(row, self.vocab, level) if n > 0 else ""}
                for row, n in zip(generated, lengths)]
