"""`keras_seq.export`: a trained run -> a TF Serving SavedModel and an ONNX model, verified.

Entry point: `keras_seq.export.exporter.export_run` (``keras-seq export``).
Modules: `savedmodel` (raw-text signatures, warmup), `onnx_model` / `onnx_rnn`
/ `onnx_graph` (native RNN/GRU/LSTM nodes from the weights), `verify` /
`fresh_check` / `capi_check` (fresh-process, TF1, saved_model_cli and C API
loading), `parity` (Keras vs SavedModel vs ONNX). Needs ``keras-seq[export]``.
"""

__all__ = ["to_onnx", "export", "export_run"]


def __getattr__(name: str):  # TensorFlow, onnx and onnxruntime load only when asked for
    if name == "to_onnx":
        from keras_seq.export.keras_to_onnx import to_onnx

        return to_onnx
    if name in ("export", "export_run"):
        from keras_seq.export import exporter

        return getattr(exporter, name)
    raise AttributeError(f"module 'keras_seq.export' has no attribute {name!r}")
