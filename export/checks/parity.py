"""Parity of the three ways to answer: the Keras model in this process, the
SavedModel reloaded in a fresh process (`export/fresh_check.py`), and ONNX
Runtime (`serving.predictor.OnnxPredictor`).

The Keras answers are computed independently of the export code: the run's
own `TextEncoder` and model, with `CRF.decode` for CRF taggers.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import tensorflow as tf

from keras_seq.contracts.answers import NUMBER_FIELDS
from keras_seq.contracts.export_dir import ExportDirectory
from keras_seq.export.checks.processes import run_child, scratch_dir
from keras_seq.export.checks.verify import FRESH_CHECK, _quiet_env, texts_file
from keras_seq.export.runs import load_trained_run
from keras_seq.pipelines.vocab import TextEncoder
from keras_seq.serving import signature_outputs as A
from keras_seq.serving.predictor import OnnxPredictor
from keras_seq.tasks import get_task


def keras_answers(
    run_dir: str | Path, tokenizer_dir: str | Path, texts: list, batch: int = 32, raw_scores: list | None = None
) -> list[dict]:
    """The Keras model's answers; taggers' per-token scores are appended to `raw_scores` if given."""
    run = load_trained_run(run_dir)
    encoder = TextEncoder(tokenizer_dir)  # the export's tokenizer files (serving max_len)
    predict = tf.function(lambda x: run.model(x, training=False), reduce_retracing=True)
    out: list[dict] = []
    for start in range(0, len(texts), batch):
        chunk = tf.constant(
            [t if isinstance(t, bytes) else t.encode("utf-8", "surrogatepass") for t in texts[start : start + batch]]
        )
        tokens = encoder.tokens(chunk)
        ids = encoder.lookup(tokens)
        dense = ids.to_tensor(0)
        dense = tf.pad(dense, [[0, 0], [0, tf.maximum(0, 1 - tf.shape(dense)[1])]])
        out += run.export_part.keras_answers(
            run, encoder, tokens, dense, ids.row_lengths().numpy(), predict, raw_scores
        )
    return out


def savedmodel_answers(
    savedmodel_dir: str | Path, texts: list, task: str, signature: str = "serving_default", chunk: int = 32
) -> list[dict]:
    """Answers of the SavedModel loaded by `tf.saved_model.load` in a fresh process
    (`chunk` texts per call: one long text pads its whole batch)."""
    with scratch_dir("keras-seq-parity") as tmp:
        run_child(
            [
                sys.executable,
                str(FRESH_CHECK),
                str(savedmodel_dir),
                str(texts_file(texts, tmp / "t.json")),
                str(tmp / "a.npz"),
                str(chunk),
            ],
            check=True,
            capture_output=True,
            timeout=3600,
            env=_quiet_env(),
        )
        stored = dict(np.load(tmp / "a.npz", allow_pickle=True))
    answers: list[dict] = []
    for i in range((len(texts) + chunk - 1) // chunk):
        raw = {
            k.split("/", 2)[2].rsplit("#", 1)[0]: v
            for k, v in stored.items()
            if k.startswith(f"tf2/{signature}/") and k.endswith(f"#{i}")
        }
        for row in A.rows_of(raw):
            answer = A.from_signature_outputs(task, row, signature)
            if "scores" in row and "lengths" in row:  # taggers: per-token scores, compared too
                answer["_scores"] = row["scores"][: int(row["lengths"])]
            answers.append(answer)
    return answers


def _numbers(answer: dict) -> np.ndarray:
    if "_scores" in answer:  # taggers: per-token probabilities or CRF emissions
        return np.asarray(answer["_scores"], np.float64).ravel()
    if "probabilities" in answer:
        return np.array(list(answer["probabilities"].values()), np.float64)
    if "loss" in answer:
        return np.array([answer["loss"]], np.float64)
    if "score" in answer:
        return np.array([answer["score"]], np.float64)
    return np.zeros(0)


def _symbols(answer: dict):
    return {k: v for k, v in answer.items() if k not in NUMBER_FIELDS}


def compare_answers(reference: list[dict], other: list[dict]) -> dict:
    """Counts answers whose labels/tags/tokens differ and the max abs difference of the numbers."""
    mismatched = [i for i, (a, b) in enumerate(zip(reference, other)) if _symbols(a) != _symbols(b)]
    diffs = [float(np.max(np.abs(_numbers(a) - _numbers(b)))) for a, b in zip(reference, other) if _numbers(a).size]
    return {
        "answers": len(other),
        "mismatched": len(mismatched),
        "first_mismatches": mismatched[:5],
        "max_abs_diff": max(diffs, default=0.0),
    }


def parity(run_dir: str | Path, export_dir: str | Path, texts: list, generate_prompts: int = 200) -> dict:
    layout = ExportDirectory(export_dir)
    info = layout.info()
    task = get_task(info["task"])
    scores: list = []
    keras_side = keras_answers(run_dir, layout.onnx_dir, texts, raw_scores=scores)
    saved = savedmodel_answers(layout.savedmodel(info), texts, info["task"])
    predictor = OnnxPredictor(layout.path)
    onnx = predictor.predict(texts)
    if scores:  # taggers: compare the per-token scores too, not only the tags
        keras_side = [{**a, "_scores": s} for a, s in zip(keras_side, scores)]
        onnx = [{**a, "_scores": s} for a, s in zip(onnx, predictor.tag_scores(texts))]
    result = {
        "task": info["task"],
        "kind": info["kind"],
        "texts": len(texts),
        "savedmodel_vs_keras": compare_answers(keras_side, saved),
        "onnx_vs_keras": compare_answers(keras_side, onnx),
        "onnx_vs_savedmodel": compare_answers(saved, onnx),
    }
    if task.generates:  # greedy continuations: the SavedModel's loop vs the predictor's
        prompts = texts[:generate_prompts]
        generated = savedmodel_answers(layout.savedmodel(info), prompts, info["task"], "generate")
        result["generate_onnx_vs_savedmodel"] = compare_answers(generated, predictor.generate(prompts))
    return result
