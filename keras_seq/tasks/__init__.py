"""The task registry: one object per task (`Task`), found by name.

>>> from keras_seq.tasks import get_task
>>> get_task("tag").label_file
'tags.txt'

Adding a task is adding one module with a `Task` subclass and registering it here.
"""
from __future__ import annotations

from keras_seq.tasks.base import Task
from keras_seq.tasks.classify import ClassifyTask
from keras_seq.tasks.lm import LanguageModelTask
from keras_seq.tasks.seq2seq import Seq2SeqTask
from keras_seq.tasks.tag import TagTask

TASKS: dict[str, Task] = {task.name: task for task in (ClassifyTask(), TagTask(), LanguageModelTask(), Seq2SeqTask())}


def get_task(name: str) -> Task:
    """The task called `name`; ValueError naming the known tasks otherwise."""
    try:
        return TASKS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown task {name!r}; known: {', '.join(TASKS)}") from None


def task_for_outputs(row: dict) -> Task:
    """The task whose ``serving_default`` outputs `row` holds (clients of a server that does not say)."""
    for task in TASKS.values():
        if task.signature_key in row:
            return task
    raise ValueError(f"no task answers with the outputs {sorted(row)}")


def task_names() -> tuple[str, ...]:
    return tuple(TASKS)


__all__ = ["Task", "TASKS", "get_task", "task_for_outputs", "task_names"]
