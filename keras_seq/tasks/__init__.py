"""The task registry: one `Task` per task (identity, label file, flags, model, loss), found by name.

>>> from keras_seq.tasks import get_task
>>> get_task("tag").label_file
'tags.txt'

Adding a task is one module with a `Task` subclass registered with `register_task`, plus one
module per room that handles it (`keras_seq.pipelines.tasks`, `keras_seq.export.tasks`,
`keras_seq.serving.tasks`), each registered with that room's decorator.
"""

from __future__ import annotations

from keras_seq.tasks.base import Task

TASKS: dict[str, Task] = {}


def register_task(cls: type[Task]) -> type[Task]:
    """Class decorator: registers an instance of a `Task` subclass under its name."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} names no task (set its `name`)")
    TASKS[cls.name] = cls()
    return cls


def get_task(name: str) -> Task:
    """The task called `name`; ValueError naming the known tasks otherwise."""
    try:
        return TASKS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown task {name!r}; known: {', '.join(TASKS)}") from None


def task_names() -> tuple[str, ...]:
    return tuple(TASKS)


# The shipped tasks register themselves on import, in this order (the order `task_names` and the
# CLI give them in).
# isort: off
from keras_seq.tasks import classify, tag, lm, seq2seq  # noqa: E402,F401
# isort: on

__all__ = ["Task", "TASKS", "get_task", "register_task", "task_names"]
