"""Deployment files for exported models (`keras-seq kit EXPORT_DIR ... --out DIR`).

TF Serving, written through its config messages (`keras_seq.deploy.protos`):

* ``models.config`` -- ModelServerConfig: one entry per export, each with its own version policy;
* ``batching_parameters.txt`` -- BatchingParameters (``--max-batch-size``, ``--batch-timeout-micros``;
  ``pad_variable_length_inputs`` for the ids signatures);
* ``monitoring.config`` -- MonitoringConfig: Prometheus at ``/monitoring/prometheus/metrics``;
* ``docker-compose.yml`` -- the ``tensorflow/serving`` image of the TensorFlow version that wrote
  the exports (from ``export.json``) on the exported folders, reading the three files above.

KServe (`keras_seq.deploy.kserve`, SDK objects): ``kserve-NAME.yaml``, an InferenceService on the
TensorFlow runtime pinned to that version, one per model with its own storage URI.

With ``onnx=True``: ``onnx/NAME/Dockerfile`` for ``keras-seq serve`` (no TensorFlow), the
export's ONNX half beside it, the wheel in ``onnx/wheels/``, and ``kserve-NAME-onnx.yaml``
running that image. Model names must be DNS-1123 labels, so every target's URL has the same
path; `write_kit` returns the files and the URL of each model in each target.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from keras_seq.contracts.export_dir import ONNX_DIR, ExportDirectory
from keras_seq.contracts.files import write_text
from keras_seq.contracts.writer_lock import one_writer
from keras_seq.deploy.kserve import check_dns_name, dockerfile, onnx_service, tensorflow_service
from keras_seq.serving.model_config import VersionPolicy, parse_label
from keras_seq.serving.versions import versions_on_disk

REST_PORT, GRPC_PORT = 8501, 8500


def version_policy(spec: str):
    """``latest:N`` | ``all`` | ``specific:1,2`` -> a ModelVersionPolicy message."""
    from tensorflow_serving.config import file_system_storage_path_source_pb2 as fs

    chosen = VersionPolicy.parse(spec)  # the one parser `keras-seq serve` uses too
    policy = fs.FileSystemStoragePathSourceConfig.ServableVersionPolicy()
    if chosen.kind == "latest":
        policy.latest.num_versions = chosen.count
    elif chosen.kind == "all":
        policy.all.SetInParent()
    else:
        policy.specific.versions.extend(chosen.versions)
    return policy


def per_model(option: str, values: list[str] | str | None, names: list[str], default, shared: bool = True) -> dict:
    """``NAME=VALUE`` items -> {name: value}; an item whose text before '=' names no model is a
    VALUE for every model -- allowed when `shared`, or when there is one model."""
    values = [values] if isinstance(values, str) else list(values or [])
    out = dict.fromkeys(names, default)
    bare = [item for item in values if item.partition("=")[0] not in names]
    if len(bare) > 1 or (bare and not shared and len(names) > 1):
        raise ValueError(f"{option}: give one per model as NAME=VALUE (models: {', '.join(names)}); received {values}")
    for name in names:
        out[name] = bare[0] if bare else default
    for item in values:
        name, _, value = item.partition("=")
        if name in names:
            out[name] = value
    return out


def labels_per_model(items: list[str], names: list[str]) -> dict[str, dict[str, int]]:
    """``[NAME:]LABEL=VERSION`` items -> {name: {label: version}}; a bare item needs one model."""
    out: dict[str, dict[str, int]] = {name: {} for name in names}
    for item in items:
        target, _, rest = item.rpartition(":")
        if (target and target not in names) or (not target and len(names) > 1):
            raise ValueError(f"--labels: say which model as NAME:LABEL=VERSION ({', '.join(names)}); received {item!r}")
        label, version = parse_label(rest)
        out[target or names[0]][label] = version
    return out


@dataclass
class KitModel:
    name: str
    export_dir: Path
    folder: Path  # savedmodel/NAME: the numbered versions
    task: str
    serving_version: str  # TF Serving = the TensorFlow that wrote the SavedModel, as MAJOR.MINOR.0


def _models(export_dirs: list) -> list[KitModel]:
    models = []
    for directory in export_dirs:
        layout = ExportDirectory(directory)
        info = layout.info()
        written_by = str(info.get("tools", {}).get("tensorflow", ""))
        if not written_by.count("."):
            raise ValueError(f"{layout.info_file}: names no TensorFlow version (tools.tensorflow); export again")
        major, minor = written_by.split(".")[:2]
        models.append(
            KitModel(
                check_dns_name(info["name"]),
                Path(directory),
                layout.savedmodel(info).parent.resolve(),
                info["task"],
                f"{major}.{minor}.0",
            )
        )
    names = [m.name for m in models]
    if len(set(names)) != len(names):
        raise ValueError(f"model names must differ; got {names} (export with --name)")
    return models


def _text_files(
    models: list[KitModel], policies: dict, labels: dict, max_batch_size: int, batch_timeout_micros: int
) -> dict:
    from google.protobuf import text_format

    from keras_seq.deploy.protos import serving_messages

    messages = serving_messages()
    config = messages["ModelServerConfig"]()
    for m in models:
        entry = config.model_config_list.config.add(
            name=m.name, base_path=f"/models/{m.name}", model_platform="tensorflow"
        )
        entry.model_version_policy.CopyFrom(version_policy(policies[m.name]))
        entry.version_labels.update(labels[m.name])
    batching = messages["BatchingParameters"](pad_variable_length_inputs=True)
    batching.max_batch_size.value = max_batch_size
    batching.batch_timeout_micros.value = batch_timeout_micros
    batching.max_enqueued_batches.value = 100
    batching.num_batch_threads.value = 4
    monitoring = messages["MonitoringConfig"]()
    monitoring.prometheus_config.enable = True
    monitoring.prometheus_config.path = "/monitoring/prometheus/metrics"
    header = "# written by keras-seq kit from TF Serving's {} message\n"
    return {
        "models.config": header.format("ModelServerConfig")
        + "# one entry per model; versions: "
        + ", ".join(f"{m.name} {policies[m.name]}" for m in models)
        + "\n"
        + text_format.MessageToString(config),
        "batching_parameters.txt": header.format("BatchingParameters")
        + f"# up to {max_batch_size} requests per batch (--max-batch-size), waiting at most {batch_timeout_micros} us "
        "(--batch-timeout-micros);\n# pad_variable_length_inputs: texts of different lengths batch together\n"
        + text_format.MessageToString(batching),
        "monitoring.config": header.format("MonitoringConfig") + text_format.MessageToString(monitoring),
    }


def _compose(models: list[KitModel], out: Path) -> str:
    import yaml

    versions = sorted({m.serving_version for m in models})
    volumes = [f"{os.path.relpath(m.folder, out.resolve())}:/models/{m.name}:ro" for m in models] + ["./:/config:ro"]
    service = {
        "image": f"tensorflow/serving:{versions[-1]}",
        "ports": [f"{GRPC_PORT}:8500", f"{REST_PORT}:8501"],
        "volumes": volumes,
        "command": [
            "--port=8500",
            "--rest_api_port=8501",
            "--model_config_file=/config/models.config",
            "--model_config_file_poll_wait_seconds=60",
            "--enable_batching=true",
            "--batching_parameters_file=/config/batching_parameters.txt",
            "--monitoring_config_file=/config/monitoring.config",
        ],
    }
    return (
        f"# TF Serving {versions[-1]} (the TensorFlow that wrote the exports: {', '.join(versions)}): "
        "docker compose up\n"
        f'# REST: curl -d \'{{"instances": ["some text"]}}\' localhost:{REST_PORT}/v1/models/{models[0].name}'
        ":predict\n" + yaml.safe_dump({"services": {"tfserving": service}}, sort_keys=False)
    )


def build_wheel(wheel: str | Path | None, folder: Path) -> str:
    """Copies the given wheel into `folder`, or builds one from this source tree."""
    import subprocess
    import sys

    folder.mkdir(parents=True, exist_ok=True)
    if wheel is None:
        source = Path(__file__).resolve().parents[1]
        if not (source / "pyproject.toml").exists():
            raise FileNotFoundError(
                "keras-seq is not installed from its source tree here: pass --wheel keras_seq-VERSION-py3-none-any.whl"
            )
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "wheel",
                "--no-deps",
                "--no-build-isolation",
                "-q",
                "-w",
                str(folder),
                str(source),
            ],
            check=True,
            capture_output=True,
            timeout=600,
        )
        return sorted(folder.glob("keras_seq-*.whl"))[-1].name
    wheel = Path(wheel)
    if not wheel.is_file() or not wheel.name.endswith(".whl"):
        raise FileNotFoundError(f"{wheel}: no such wheel file")
    shutil.copy2(wheel, folder / wheel.name)
    return wheel.name


def write_kit(
    export_dirs: list,
    out: str | Path,
    *,
    storage_uri: list[str] | str | None = None,
    versions: list[str] | str = "latest:1",
    max_batch_size: int = 64,
    batch_timeout_micros: int = 2000,
    onnx: bool = False,
    wheel: str | Path | None = None,
    image_prefix: str = "keras-seq",
    namespace: str | None = None,
    labels: list[str] | None = None,
) -> dict:
    """Writes the deployment files; returns {"files": [paths], "urls": {target: {model: url}}}.
    `storage_uri` / `versions`: ``NAME=VALUE`` items, or one value for every model; `labels`:
    ``[NAME:]LABEL=VERSION`` items (TF Serving's version_labels, e.g. ``stable=1``, ``canary=2``)."""
    import yaml

    out = Path(out)
    models = _models(export_dirs)
    names = [m.name for m in models]
    uris = per_model("--storage-uri", storage_uri, names, None, shared=False)
    policies = per_model("--versions", versions, names, "latest:1")
    for policy in policies.values():
        version_policy(policy)  # checked before anything is written
    model_labels = labels_per_model(labels or [], names)
    with one_writer(out, "keras-seq kit"):  # one writer per kit folder
        files = _text_files(models, policies, model_labels, max_batch_size, batch_timeout_micros)
        files["docker-compose.yml"] = _compose(models, out)
        host = f"{{name}}.{namespace or 'default'}.example.com"  # the cluster's domain replaces example.com
        urls = {
            "docker compose (TF Serving)": {
                m.name: f"http://localhost:{REST_PORT}/v1/models/{m.name}:predict" for m in models
            },
            "KServe, TensorFlow runtime": {
                m.name: f"http://{host.format(name=m.name)}/v1/models/{m.name}:predict" for m in models
            },
        }
        for m in models:
            uri = uris[m.name] or f"pvc://models/{m.name}"
            files[f"kserve-{m.name}.yaml"] = (
                f"# kubectl apply -f kserve-{m.name}.yaml -- storageUri: the folder holding the numbered versions of\n"
                f"# {m.folder}; runtimeVersion: TF Serving {m.serving_version}, the TensorFlow that wrote the export\n"
                + yaml.safe_dump(tensorflow_service(m.name, uri, m.serving_version, namespace), sort_keys=False)
            )
        if onnx:
            wheel_name = build_wheel(wheel, out / "onnx" / "wheels")
            urls["ONNX container (docker run -p 8080:8080)"] = {}
            urls["KServe, ONNX container"] = {}
            for m in models:
                policy = policies[m.name]
                target = out / "onnx" / m.name / "versions"
                if target.exists():
                    shutil.rmtree(target)
                for version in VersionPolicy.parse(policy).select(list(versions_on_disk(m.folder))):
                    # only the ONNX half of each version: the folder layout `keras-seq serve` polls
                    shutil.copytree(m.folder / str(version) / ONNX_DIR, target / str(version) / ONNX_DIR)
                if not target.exists():
                    raise FileNotFoundError(f"{m.folder}: no version holds an {ONNX_DIR}/ half; export again")
                files[f"onnx/{m.name}/Dockerfile"] = dockerfile(
                    m.name, wheel_name, f"onnx/{m.name}/versions", policy, model_labels[m.name]
                )
                image = f"{image_prefix}-{m.name}:latest"
                files[f"kserve-{m.name}-onnx.yaml"] = (
                    f"# kubectl apply -f kserve-{m.name}-onnx.yaml after pushing the image built from "
                    f"onnx/{m.name}/Dockerfile as {image}\n"
                    + yaml.safe_dump(onnx_service(m.name, image, namespace), sort_keys=False)
                )
                urls["ONNX container (docker run -p 8080:8080)"][m.name] = (
                    f"http://localhost:8080/v1/models/{m.name}:predict"
                )
                urls["KServe, ONNX container"][m.name] = (
                    f"http://{host.format(name=m.name + '-onnx')}/v1/models/{m.name}:predict"
                )
        return {"files": write_files(out, files), "urls": urls}


def write_files(out: Path, files: dict) -> list[Path]:
    """Writes {relative path: text} under `out`; returns the paths."""
    written = []
    for name, text in files.items():
        path = out / name
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text(path, text)
        written.append(path)
    return written
