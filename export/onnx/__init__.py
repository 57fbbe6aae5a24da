"""ONNX writers: the converter (native RNN / GRU / LSTM nodes from the weights, handlers registered
beside each layer), the task graphs written into ``EXPORT_DIR/onnx/``, and int8 quantization."""
