"""The pipelines' per-task parts (`TaskPipeline`), found with `pipeline_for(name)`.

>>> from keras_seq.pipelines.tasks import pipeline_for
>>> pipeline_for("tag").monitors
('val_loss', 'val_accuracy', 'val_f1')
"""

from keras_seq.pipelines.tasks import classify, lm, seq2seq, tag  # noqa: F401,E402 (they register)
from keras_seq.pipelines.tasks.base import PIPELINE_PARTS, TaskPipeline, pipeline_for

__all__ = ["PIPELINE_PARTS", "TaskPipeline", "pipeline_for"]
