"""The export room's per-task parts (`TaskExport`), found with `export_for(name)`.

>>> from keras_seq.export.tasks import export_for
>>> export_for("lm").text_signatures
('serving_default', 'generate')
"""

from keras_seq.export.tasks import classify, lm, seq2seq, tag  # noqa: F401,E402 (they register)
from keras_seq.export.tasks.base import EXPORT_PARTS, TaskExport, export_for

__all__ = ["EXPORT_PARTS", "TaskExport", "export_for"]
