"""`keras_seq.export`: a trained run -> a TF Serving SavedModel and an ONNX model, verified.

Entry points: `export_run` (``keras-seq export``), `export` (a model trained in your own code:
the same layout), `to_savedmodel` and `to_onnx` (one artifact of any Keras model).
Wings: `savedmodel` (raw-text signatures, warmup, the in-graph beam search), `onnx` (the
converter with native RNN/GRU/LSTM nodes, task graphs, int8), `checks` (fresh-process, TF1,
saved_model_cli and C API loading; parity of Keras, SavedModel and ONNX), and `tasks` (this
room's per-task part). Needs ``keras-seq[export]``.
"""

__all__ = ["to_onnx", "to_savedmodel", "export", "export_run"]


def __getattr__(name: str):  # TensorFlow, onnx and onnxruntime load only when asked for
    if name == "to_onnx":
        from keras_seq.export.onnx.keras_model import to_onnx

        return to_onnx
    if name == "to_savedmodel":
        from keras_seq.export.savedmodel.keras_model import to_savedmodel

        return to_savedmodel
    if name in ("export", "export_run"):
        from keras_seq.export import exporter

        return getattr(exporter, name)
    raise AttributeError(f"module 'keras_seq.export' has no attribute {name!r}")
