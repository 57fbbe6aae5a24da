"""The mapping between the answer contract (`keras_seq.contracts.answers`) and a SavedModel's
signature outputs (as TF Serving returns them, and as the local server sends them). The NumPy
decoding beside the ONNX graph is `keras_seq.serving.scoring`, re-exported here as before.
"""

from __future__ import annotations

from keras_seq.contracts.answers import classify_answer, generate_answer, lm_answer, tag_answer, text_of
from keras_seq.serving.scoring import greedy_tokens, join_tokens, lm_scores, log_softmax, viterbi
from keras_seq.serving.tasks import answers_for

__all__ = [
    "classify_answer",
    "tag_answer",
    "lm_answer",
    "generate_answer",
    "viterbi",
    "log_softmax",
    "lm_scores",
    "greedy_tokens",
    "join_tokens",
    "rows_of",
    "from_signature_outputs",
    "to_signature_outputs",
]


def from_signature_outputs(task: str, row: dict, signature: str = "serving_default") -> dict:
    """One row of the SavedModel's outputs (as TF Serving returns them over REST
    or gRPC, or as the local server sends them) -> the task's answer."""
    if signature == "generate":
        return generate_answer(text_of(row["continuation"]))
    return answers_for(task).answer_from_outputs(row, None)


def rows_of(columns: dict) -> list[dict]:
    """Batched signature outputs {name: (B, ...)} -> one {name: value} per row."""
    return [dict(zip(columns, values)) for values in zip(*columns.values())]


def to_signature_outputs(task: str, answer: dict, labels: list[str] | None = None) -> dict:
    """The inverse, for the local server: an answer as the SavedModel's output row."""
    if "continuation" in answer:
        return {"continuation": answer["continuation"]}
    return answers_for(task).outputs_from_answer(answer, labels)
