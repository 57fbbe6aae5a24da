"""`keras_seq.serving`: reads exported artifacts only; the ONNX path needs
neither TensorFlow nor keras (``pip install keras-seq[serving]``).

`predictor.OnnxPredictor` (ONNX Runtime + the tokenizer twin in `text`),
`scoring` (Viterbi and greedy beside the graph), `answers` (signature outputs), `client` (REST and gRPC),
`server` (KServe model server), `savedmodel_predictor` (TensorFlow), `tasks` (this room's
per-task part). The deployment files (TF Serving, KServe, Kubeflow) are `keras_seq.deploy`.
"""
