"""Serving: reads exported artifacts only; the ONNX path needs no TensorFlow.

`predictor.OnnxPredictor` (ONNX Runtime + the tokenizer twin in `text`),
`answers` (the answer shapes, Viterbi and greedy beside the graph),
`client` (REST and gRPC), `server` (KServe model server), `tfserving_kit`
(TF Serving / KServe deployment files), `savedmodel_predictor` (TensorFlow).
"""
