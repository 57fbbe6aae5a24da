"""`OnnxPredictor`: raw text in, answers out, with ONNX Runtime and NumPy only.

Reads ``EXPORT_DIR/onnx/``: ``model.onnx``, ``model.json`` (task, label file,
CRF parameters, generation length), ``tokenizer.json`` and the vocabulary
files. Text becomes ids through `serving.text.TextTokenizer`, the pure-Python
twin of the tokenizer inside the SavedModel (byte-identical ids, tested).
Thread-safe: ONNX Runtime sessions may be run from several threads, and
nothing else here holds mutable state.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from keras_seq.contracts import read_labels
from keras_seq.contracts.export_dir import ONNX_MODEL_FILE, find_onnx_dir, read_onnx_info
from keras_seq.serving import signature_outputs as A
from keras_seq.serving.tasks import answers_for
from keras_seq.serving.tokenizer_twin import TextTokenizer
from keras_seq.tasks import get_task

MAX_BATCH = 64  # prompts per generation batch
CHUNK = 16  # the most texts one ONNX Runtime call runs
CHUNK_SPREAD = 1.5  # a chunk's longest text is at most this many times its shortest (padding bound)


def in_length_chunks(texts: list, answer, size: int = CHUNK, spread: float = CHUNK_SPREAD) -> list:
    """`answer(batch) -> answers` over chunks of texts of similar length, results in the input
    order (answers do not depend on how texts are batched). Texts are sorted by length and a
    chunk ends at `size` texts or before a text longer than `spread` times its first, so padding
    stays under a third of a chunk: the recurrent kernels run every padded step. (Measured on
    IMDB and EWT exports, `benchmarks/bench_server.py`; fixed chunks of 16 let 8 random reviews
    pad to the longest.)"""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out: list = [None] * len(texts)
    chunk: list[int] = []

    def run() -> None:
        for i, result in zip(chunk, answer([texts[i] for i in chunk])):
            out[i] = result

    for i in order:
        if chunk and (len(chunk) >= size or len(texts[i]) > spread * max(1, len(texts[chunk[0]]))):
            run()
            chunk = []
        chunk.append(i)
    if chunk:
        run()
    return out


def check_texts(texts: Iterable, token_lists: bool = False) -> list:
    """`texts` as a list, each a string, or with `token_lists` also a list of strings."""
    if isinstance(texts, (str, bytes)):
        raise TypeError("`texts` must be a list of strings, not one string")
    texts = list(texts)
    for i, text in enumerate(texts):
        if isinstance(text, (str, bytes)):
            continue
        if not isinstance(text, (list, tuple)):
            raise TypeError(f"texts[{i}] is {type(text).__name__}, expected a string")
        if not token_lists:
            raise TypeError(
                f"texts[{i}] is a {type(text).__name__}: token lists are answered by taggers only; send a string"
            )
        for j, token in enumerate(text):
            if not isinstance(token, (str, bytes)):
                raise TypeError(f"texts[{i}][{j}] is {type(token).__name__}, expected a token string")
    return texts


class OnnxPredictor:
    """Raw text in, answers out (`keras_seq.contracts.answers`), from an export's ONNX model.

    >>> predictor = OnnxPredictor("demo-out/export")          # doctest: +SKIP
    >>> predictor.predict(["good , not bad at all"])          # doctest: +SKIP
    [{'label': 'pos', 'probabilities': {'neg': 0.01, 'pos': 0.99}}]
    """

    def __init__(self, export_dir: str | Path, threads: int | None = None, int8: bool = False) -> None:
        import onnxruntime as ort

        directory = self.directory = find_onnx_dir(export_dir)
        self.info = read_onnx_info(directory)
        self.task = get_task(self.info["task"])
        self.answers = answers_for(self.task)  # this room's part of the task
        self.kind, self.output = self.info["kind"], self.info["output"]
        self.tokenizer = TextTokenizer(directory)
        self.labels = read_labels(directory / self.info["labels_file"]) if self.info.get("labels_file") else None
        crf = self.info.get("crf")
        self.crf = [np.asarray(crf[k], np.float32) for k in ("transitions", "start", "end")] if crf else None
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        quantized = (self.info.get("int8") or {}).get("graphs", {})
        if int8 and not quantized:
            raise ValueError(f"{directory}: this export has no int8 graphs; export again with --int8 (int8=True)")

        def session(name: str):
            name = quantized[name] if int8 else name  # the int8 twin takes and gives the same tensors
            return ort.InferenceSession(str(directory / name), options, providers=["CPUExecutionProvider"])

        self.session = session(ONNX_MODEL_FILE)
        # graphs beside model.onnx (seq2seq: the decoder step), by file name
        self.extra_sessions = {name: session(name) for name in self.info.get("graphs", []) if name != ONNX_MODEL_FILE}
        self.state_names = [i.name for i in self.session.get_inputs() if i.name.startswith("state_")]
        self.state_sizes = [int(i.shape[1]) for i in self.session.get_inputs() if i.name.startswith("state_")]
        self.vocab = self.tokenizer.vocabulary.tokens  # id -> token, for generated continuations

    # -- public API --------------------------------------------------------------
    def predict(self, texts: Iterable[str | bytes | Sequence[str]]) -> list[dict]:
        """One answer per text, in order (the task's shape in `keras_seq.contracts.answers`).

        Taggers also take a text as a list of tokens, split already (a CoNLL sentence): it is
        answered one tag per given token, cleaned as the tokenizer cleans words (rules 1-2) and
        cut at its `max_len`, never split again."""
        texts = check_texts(texts, token_lists=self.answers.takes_token_lists)
        return in_length_chunks(texts, lambda batch: self.answers.onnx_answers(self, batch))

    def generate(self, texts: Iterable[str | bytes], length: int | None = None) -> list[dict]:
        """Greedy continuation of each prompt (language models)."""
        if not self.task.generates:
            raise ValueError(f"generate needs a language model; this export is a {self.task.name} model")
        texts = check_texts(texts)
        length = int(length or self.info["generate_length"])
        out: list[dict] = []
        for start in range(0, len(texts), MAX_BATCH):
            out += self._generate_batch(texts[start : start + MAX_BATCH], length)
        return out

    def tag_scores(self, texts: Iterable[str | bytes | Sequence[str]]) -> list[np.ndarray]:
        """Taggers: each text's per-token scores (tokens, tags) -- tag probabilities,
        or for CRF taggers the emissions that Viterbi decodes. Texts may be token lists (`predict`)."""
        if not hasattr(self.answers, "onnx_scores"):  # tasks that score tokens
            raise ValueError(f"tag_scores needs a tagger; this export is a {self.task.name} model")
        texts = check_texts(texts, token_lists=True)
        return in_length_chunks(texts, lambda batch: self.answers.onnx_scores(self, batch)[1])

    def zero_states(self, batch: int) -> dict:
        return {name: np.zeros((batch, size), np.float32) for name, size in zip(self.state_names, self.state_sizes)}

    def _generate_batch(self, texts: list, length: int) -> list[dict]:
        ids, lengths = self.tokenizer.encode_batch(texts)
        outputs = self.session.run(None, {"ids": ids, **self.zero_states(len(texts))})
        first = outputs[0][np.arange(len(texts)), np.maximum(lengths - 1, 0)]

        def step(tokens, states):
            result = self.session.run(
                None, {"ids": tokens[:, None].astype(np.int64), **dict(zip(self.state_names, states))}
            )
            return result[0][:, -1], result[1:]

        generated = A.greedy_tokens(first, step, outputs[1:], length)
        level = self.tokenizer.level
        return [
            A.generate_answer(A.join_tokens(row, self.vocab, level) if n > 0 else "")
            for row, n in zip(generated, lengths)
        ]
