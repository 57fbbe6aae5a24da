"""`TaskExport`: what the exporters do differently per task -- the SavedModel's signatures, the
ONNX graphs and their outputs, the padding probe, and the Keras-side answers the parity checks
compare against -- and its registry, `EXPORT_PARTS`."""

from __future__ import annotations

from keras_seq.tasks.registry import TaskPart, TaskParts


class TaskExport(TaskPart):
    """The export room's part of a task; one subclass per task, registered with ``@EXPORT_PARTS.register``."""

    #: Signatures that take raw text (the first is serving_default).
    text_signatures: tuple[str, ...] = ("serving_default",)

    def output_kind(self, model) -> str:
        """What the graph's output means (classify | tag | crf | lm | seq2seq), as export.json records it."""
        return self.name

    def onnx_output(self, kind: str) -> str:
        """The ONNX graph's output name."""
        raise NotImplementedError

    def onnx_output_axes(self) -> list[str]:
        return ["batch", "time", "classes"]

    def onnx_info(self, run) -> dict:
        """What the ONNX-side answers need beyond the graphs, for ``onnx/model.json``."""
        return {}

    def text_graph_decodes(self, kind: str) -> bool:
        """Whether the answer can be computed inside the text-in graph (`keras_seq.export.onnx.text_graph`)."""
        return False

    def text_graph_fields(self, graph, output: str, labels: list[str], tokenized: dict) -> dict:
        """The answer's fields as tensors of the text-in graph: {field: tensor name}, built with
        `graph` (its ``op``/``labels_of`` helpers) from the model's `output` tensor and the
        tokenizer's `tokenized` tensors (``tokens``, ``lengths``)."""
        raise NotImplementedError

    def onnx_models(self, model, metadata: dict) -> dict:
        """ONNX file name -> graph, for ``EXPORT_DIR/onnx/`` (one graph unless the task needs more)."""
        from keras_seq.contracts.export_dir import ONNX_MODEL_FILE
        from keras_seq.export.onnx.task_graphs import task_model_to_onnx

        return {ONNX_MODEL_FILE: task_model_to_onnx(model, self.name, metadata)}

    def serving_signatures(self, functions) -> dict:
        """name -> (function, input signature) on `keras_seq.export.savedmodel.signatures.ServingFunctions`."""
        raise NotImplementedError

    def probe_inputs(self, model, rng) -> list:
        """Model inputs after the token ids that the padding probe feeds unchanged."""
        return []

    def padding_probe(self, plain, padded, ids):
        """The comparable parts of a model's outputs without and with extra padding."""
        return plain, padded

    def keras_answers(self, run, encoder, tokens, ids, lengths, predict, raw_scores=None) -> list[dict]:
        """Answers straight from the Keras model (the parity reference): `tokens` ragged, `ids` padded."""
        raise NotImplementedError


EXPORT_PARTS: TaskParts[TaskExport] = TaskParts("export")


def export_for(task) -> TaskExport:
    """The export room's part of `task` (a name or a core `Task`)."""
    return EXPORT_PARTS.get(task)
