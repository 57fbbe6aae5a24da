"""Deployment files for exported models (`keras-seq kit EXPORT_DIR ... --out DIR`):

* ``models.config`` -- TF Serving's ModelServerConfig (text protobuf): one entry per export,
  with its version policy;
* ``batching_parameters.txt`` -- server-side batching (every value in braces, as TF Serving's
  BatchingParameters text format wants; ``pad_variable_length_inputs`` for the ids signatures);
* ``monitoring.config`` -- Prometheus metrics at ``/monitoring/prometheus/metrics``;
* ``docker-compose.yml`` -- the official ``tensorflow/serving`` image on the exported folders
  (gRPC 8500, REST 8501), reading the three files above;
* ``kserve-NAME.yaml`` -- a KServe ``InferenceService`` per model, for Kubernetes.

Tests parse every file back: the configs with tensorflow-serving-api's protos, the YAML with a
YAML parser.
"""
from __future__ import annotations

import os
from pathlib import Path

from keras_seq.contracts.export_dir import ExportDirectory

TF_SERVING_IMAGE = "tensorflow/serving:2.21.0"  # the TensorFlow version the SavedModels are written with


def version_policy(spec: str) -> str:
    """``latest:N`` | ``all`` | ``specific:1,2`` -> the ModelVersionPolicy text proto."""
    kind, _, value = spec.partition(":")
    if kind == "latest" and value.isdigit() and int(value) > 0:
        return f"latest {{ num_versions: {int(value)} }}"
    if kind == "all" and not value:
        return "all {}"
    if kind == "specific" and value and all(v.strip().isdigit() for v in value.split(",")):
        return "specific { " + " ".join(f"versions: {int(v)}" for v in value.split(",")) + " }"
    raise ValueError(f"version policy must be latest:N, all or specific:1,2,...; received {spec!r}")


def _models(export_dirs: list) -> list[dict]:
    models = []
    for directory in export_dirs:
        layout = ExportDirectory(directory)
        info = layout.info()
        folder = layout.savedmodel(info).parent
        models.append({"name": info["name"], "folder": folder.resolve(), "task": info["task"]})
    names = [m["name"] for m in models]
    if len(set(names)) != len(names):
        raise ValueError(f"model names must differ; got {names} (export with --name)")
    return models


def write_kit(export_dirs: list, out: str | Path, *, storage_uri: str | None = None,
              versions: str = "latest:1", max_batch_size: int = 64) -> list[Path]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    models = _models(export_dirs)
    policy = version_policy(versions)
    entries = "\n".join(
        f"  config {{\n    name: \"{m['name']}\"\n    base_path: \"/models/{m['name']}\"\n"
        f"    model_platform: \"tensorflow\"\n    model_version_policy {{ {policy} }}\n  }}" for m in models)
    files = {
        "models.config": f"model_config_list {{\n{entries}\n}}\n",
        "batching_parameters.txt": (
            f"max_batch_size {{ value: {max_batch_size} }}\nbatch_timeout_micros {{ value: 2000 }}\n"
            "max_enqueued_batches { value: 100 }\nnum_batch_threads { value: 4 }\n"
            "pad_variable_length_inputs: true\n"),
        "monitoring.config": "prometheus_config {\n  enable: true\n  path: \"/monitoring/prometheus/metrics\"\n}\n",
    }
    volumes = "\n".join(f"      - {os.path.relpath(m['folder'], out.resolve())}:/models/{m['name']}:ro" for m in models)
    files["docker-compose.yml"] = f"""# TF Serving on the exported SavedModels: docker compose up
# REST: curl -d '{{"instances": ["some text"]}}' localhost:8501/v1/models/{models[0]['name']}:predict
services:
  tfserving:
    image: {TF_SERVING_IMAGE}
    ports:
      - "8500:8500"   # gRPC
      - "8501:8501"   # REST
    volumes:
{volumes}
      - ./:/config:ro
    command:
      - --port=8500
      - --rest_api_port=8501
      - --model_config_file=/config/models.config
      - --model_config_file_poll_wait_seconds=60
      - --enable_batching=true
      - --batching_parameters_file=/config/batching_parameters.txt
      - --monitoring_config_file=/config/monitoring.config
"""
    for m in models:
        uri = storage_uri or f"pvc://models/{m['name']}"
        files[f"kserve-{m['name']}.yaml"] = f"""# kubectl apply -f kserve-{m['name']}.yaml  (storageUri: the folder holding the numbered versions)
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: {m['name'].replace('_', '-').replace('.', '-').lower()}
spec:
  predictor:
    model:
      modelFormat:
        name: tensorflow
      storageUri: "{uri}"
      resources:
        requests:
          cpu: "1"
          memory: 2Gi
        limits:
          cpu: "2"
          memory: 4Gi
"""
    written = []
    for name, text in files.items():
        path = out / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
