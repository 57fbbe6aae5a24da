"""`TaskAnswers`: what the TF-free runtime does differently per task -- answers from the ONNX
session, answers from (and to) a SavedModel's signature outputs -- and its registry,
`ANSWER_PARTS`. NumPy only: no TensorFlow, no keras."""

from __future__ import annotations

from keras_seq.tasks.registry import TaskPart, TaskParts


class TaskAnswers(TaskPart):
    """The serving room's part of a task; one subclass per task, registered with ``@ANSWER_PARTS.register``."""

    #: An output of ``serving_default`` that only this task's rows carry.
    signature_key: str = ""
    #: Answers token lists as well as raw texts (`OnnxPredictor`: tokens already split, e.g. from
    #: a CoNLL file, are answered one tag each instead of being split again).
    takes_token_lists: bool = False

    def answer_from_outputs(self, row: dict, labels: list[str] | None) -> dict:
        """One row of the ``serving_default`` signature's outputs -> the answer."""
        raise NotImplementedError

    def outputs_from_answer(self, answer: dict, labels: list[str] | None) -> dict:
        """The inverse, for the local server's V1 replies."""
        raise NotImplementedError

    def onnx_answers(self, predictor, texts: list) -> list[dict]:
        """Answers from `keras_seq.serving.OnnxPredictor`'s session for one chunk of texts."""
        raise NotImplementedError

    def answer_numbers(self, answer: dict) -> list[float]:
        """The numbers parity checks compare within a tolerance."""
        return []


ANSWER_PARTS: TaskParts[TaskAnswers] = TaskParts("serving")


def answers_for(task) -> TaskAnswers:
    """The serving room's part of `task` (a name or a core `Task`)."""
    return ANSWER_PARTS.get(task)


def task_for_outputs(row: dict) -> TaskAnswers:
    """The part whose ``serving_default`` outputs `row` holds (clients of a server that does not say)."""
    for part in ANSWER_PARTS:
        if part.signature_key in row:
            return part
    raise ValueError(f"no task answers with the outputs {sorted(row)}")
