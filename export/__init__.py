"""`keras_seq.export`: a trained run -> a TF Serving SavedModel and an ONNX model, verified.

Entry point: `keras_seq.export.exporter.export_run` (``keras-seq export``).
Modules: `savedmodel` (raw-text signatures, warmup), `onnx_model` / `onnx_rnn`
/ `onnx_graph` (native RNN/GRU/LSTM nodes from the weights), `verify` /
`fresh_check` / `capi_check` (fresh-process, TF1, saved_model_cli and C API
loading), `parity` (Keras vs SavedModel vs ONNX). Needs ``keras-seq[export]``.
"""

__all__ = ["to_onnx"]


def __getattr__(name: str):
    if name == "to_onnx":  # onnx and onnxruntime load only when asked for
        from keras_seq.export.keras_to_onnx import to_onnx

        return to_onnx
    raise AttributeError(f"module 'keras_seq.export' has no attribute {name!r}")
