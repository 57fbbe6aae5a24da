"""`TaskParts`: one room's per-task code, keyed by task name.

Each room (pipelines, export, serving) keeps what it does differently per task in its own
registry of part objects, so no room branches on a task's name and the core never imports a
room. A part class names its task and registers itself with one decorator line::

    @PIPELINE_PARTS.register
    class ToyPipeline(ClassifyPipeline):
        name = "toy"

>>> parts = TaskParts("example")
>>> @parts.register
... class Part:
...     name = "classify"
>>> parts.get("classify").name, parts.names()
('classify', ('classify',))
>>> parts.get("tag")
Traceback (most recent call last):
ValueError: the example room has no part for task 'tag'; it has: classify
"""

from __future__ import annotations

from typing import Generic, TypeVar

Part = TypeVar("Part")


class TaskPart:
    """Base of a room's part of a task: it names the task; `task` is the core `Task` of that name."""

    name: str = ""

    @property
    def task(self):
        from keras_seq.tasks import get_task  # the registry module sits below the task registry

        return get_task(self.name)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} of task {self.name}>"


class TaskParts(Generic[Part]):
    """Task name -> one room's part object for that task."""

    def __init__(self, room: str) -> None:
        self.room = room
        self._parts: dict[str, Part] = {}

    def register(self, cls: type[Part]) -> type[Part]:
        """Class decorator: an instance of `cls` answers for the task `cls.name`."""
        name = getattr(cls, "name", "")
        if not name:
            raise ValueError(f"{cls.__name__} names no task (set its `name`)")
        self._parts[name] = cls()
        return cls

    def get(self, task) -> Part:
        """The part for `task` (a name, or an object with a ``name``); a name no task has says which
        tasks exist."""
        from keras_seq.tasks import TASKS, get_task

        name = task if isinstance(task, str) else getattr(task, "name", task)
        if name not in self._parts and isinstance(name, str) and name not in TASKS:
            get_task(name)  # raises: unknown task, known: ...
        try:
            return self._parts[name]
        except (KeyError, TypeError):
            raise ValueError(
                f"the {self.room} room has no part for task {name!r}; it has: {', '.join(self._parts) or 'none'}"
            ) from None

    def names(self) -> tuple[str, ...]:
        return tuple(self._parts)

    def __iter__(self):
        return iter(self._parts.values())
