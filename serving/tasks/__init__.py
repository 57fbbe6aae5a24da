"""The serving room's per-task parts (`TaskAnswers`), found with `answers_for(name)`.

>>> from keras_seq.serving.tasks import answers_for
>>> answers_for("tag").takes_token_lists
True
"""

from keras_seq.serving.tasks import classify, lm, seq2seq, tag  # noqa: F401,E402 (they register)
from keras_seq.serving.tasks.base import ANSWER_PARTS, TaskAnswers, answers_for, task_for_outputs

__all__ = ["ANSWER_PARTS", "TaskAnswers", "answers_for", "task_for_outputs"]
