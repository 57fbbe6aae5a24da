"""Checks of written exports: a fresh process and the TF C API load the SavedModel, ONNX Runtime
answers as Keras does (parity), padding and adversarial probes, export debris."""
