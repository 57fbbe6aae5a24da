"""`SavedModelPredictor`: the exported SavedModel in TensorFlow, answering in
the same shapes as `OnnxPredictor` (TensorFlow is imported only here)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from keras_seq.contracts.export_dir import ExportDirectory
from keras_seq.serving import signature_outputs as A
from keras_seq.serving.predictor import check_texts, in_length_chunks
from keras_seq.tasks import get_task


def _encode(text: str | bytes) -> bytes:
    # A str may hold lone surrogates (JSON "\ud800"); they go in as the invalid
    # UTF-8 they are, and the graph replaces them as the twin does.
    return text if isinstance(text, bytes) else text.encode("utf-8", errors="surrogatepass")


def latest_version(export_dir: Path) -> Path:
    """The SavedModel version folder that ``export.json`` names."""
    return ExportDirectory(export_dir).savedmodel()


class SavedModelPredictor:
    def __init__(self, export_dir: str | Path) -> None:
        import tensorflow as tf

        layout = ExportDirectory(export_dir)
        self.info = layout.info()
        self.task = self.info["task"]
        self.tf = tf
        self.model = tf.saved_model.load(str(layout.savedmodel(self.info)))

    def _call(self, signature: str, texts: list) -> dict:
        fn = self.model.signatures[signature]
        result = fn(text=self.tf.constant([_encode(t) for t in texts], self.tf.string))
        return {k: v.numpy() for k, v in result.items()}

    def _answers(self, batch: list, signature: str) -> list[dict]:
        rows = A.rows_of(self._call(signature, batch))
        return [A.from_signature_outputs(self.task, row, signature) for row in rows]

    def predict(self, texts: Iterable[str | bytes]) -> list[dict]:
        return in_length_chunks(check_texts(texts), lambda batch: self._answers(batch, "serving_default"))

    def generate(self, texts: Iterable[str | bytes]) -> list[dict]:
        if not get_task(self.task).generates:
            raise ValueError(f"generate needs a language model; this export is a {self.task} model")
        return in_length_chunks(check_texts(texts), lambda batch: self._answers(batch, "generate"))
