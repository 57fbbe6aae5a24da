"""`keras_seq.export`: a trained run -> a TF Serving SavedModel and an ONNX model, verified.

Entry point: `keras_seq.export.exporter.export_run` (``keras-seq export``).
Modules: `savedmodel` (raw-text signatures, warmup), `onnx_model` / `onnx_rnn`
/ `onnx_graph` (native RNN/GRU/LSTM nodes from the weights), `verify` /
`fresh_check` / `capi_check` (fresh-process, TF1, saved_model_cli and C API
loading), `parity` (Keras vs SavedModel vs ONNX). Needs ``keras-seq[export]``.
"""
