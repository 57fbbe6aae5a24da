"""The pipelines' per-task parts (`TaskPipeline`), found with `pipeline_for(name)`.

>>> from keras_seq.pipelines.tasks import pipeline_for
>>> pipeline_for("tag").monitors
('val_loss', 'val_accuracy', 'val_f1')
"""
from keras_seq.pipelines.tasks.base import PIPELINE_PARTS, TaskPipeline, pipeline_for
from keras_seq.pipelines.tasks import classify, tag, lm, seq2seq  # noqa: F401,E402 (they register)

__all__ = ["PIPELINE_PARTS", "TaskPipeline", "pipeline_for"]
