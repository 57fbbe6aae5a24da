"""Exporters: SavedModel for TF Serving and ONNX for ONNX Runtime."""
