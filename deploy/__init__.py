"""`keras_seq.deploy`: the files that deploy an export or a training job -- TF Serving's
model config, docker-compose and KServe InferenceServices (`tfserving`, `kserve`, their protos
in `protos`), and Kubeflow TFJobs (`kubeflow`) -- written by ``keras-seq kit``. It sits above
the serving runtime and the pipelines and may use both; nothing below imports it.
"""
