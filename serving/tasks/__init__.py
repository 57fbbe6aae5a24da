"""The serving room's per-task parts (`TaskAnswers`), found with `answers_for(name)`.

>>> from keras_seq.serving.tasks import answers_for
>>> answers_for("tag").takes_token_lists
True
"""
from keras_seq.serving.tasks.base import ANSWER_PARTS, TaskAnswers, answers_for, task_for_outputs
from keras_seq.serving.tasks import classify, tag, lm, seq2seq  # noqa: F401,E402 (they register)

__all__ = ["ANSWER_PARTS", "TaskAnswers", "answers_for", "task_for_outputs"]
