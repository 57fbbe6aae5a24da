"""Exporters: a trained run -> a TF Serving SavedModel and an ONNX model, verified.

Entry points: `export.exporter.export_run` (``keras-seq export``) and the full
command line in `export.cli`. Modules: `savedmodel` (raw-text signatures,
warmup), `onnx_model` / `onnx_rnn` / `onnx_graph` (native RNN/GRU/LSTM nodes
from the weights), `verify` / `fresh_check` / `capi_check` (fresh-process,
TF1, saved_model_cli and C API loading), `parity` (Keras vs SavedModel vs ONNX).
"""
