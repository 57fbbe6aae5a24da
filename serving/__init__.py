"""`keras_seq.serving`: reads exported artifacts only; the ONNX path needs
neither TensorFlow nor keras (``pip install keras-seq[serving]``).

`predictor.OnnxPredictor` (ONNX Runtime + the tokenizer twin in `text`),
`answers` (Viterbi and greedy beside the graph), `client` (REST and gRPC),
`server` (KServe model server), `tfserving_kit` (TF Serving / KServe
deployment files), `savedmodel_predictor` (TensorFlow).
"""
