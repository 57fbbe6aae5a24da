"""KServe manifests and the ONNX server's container, built from the real schemas.

The InferenceServices are `kserve` SDK objects (`V1beta1InferenceService` and its
specs, with `kubernetes.client` types for metadata, containers and resources),
serialized by the SDK's `ApiClient.sanitize_for_serialization`: nothing is
assembled as text, so a misspelt field is a TypeError here, not a manifest the
cluster rejects. (The SDK's `ApiClient.deserialize` cannot read them back --
kserve 0.21 cannot resolve `V1ObjectMeta` / `V1ResourceRequirements` -- so the
test re-reads the YAML and compares it field by field.)

The Dockerfile is for ``keras-seq serve`` (onnxruntime, no TensorFlow):
`dockerfile` writes it and `dockerfile_instructions` parses it back (the test
checks each rule: slim base, wheel install, non-root user, one port, 0.0.0.0
inside the container, a HEALTHCHECK on readiness).
"""

from __future__ import annotations

import json
import re

SERVE_PORT = 8080
PRE_STOP_S = 5  # seconds the pod keeps serving after Kubernetes starts removing it, before SIGTERM
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
RESOURCES = {"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"cpu": "2", "memory": "4Gi"}}


def check_dns_name(name: str) -> str:
    """Model names become the InferenceService's name and every URL path: a DNS-1123
    label is the one form that is the same in TF Serving, the ONNX server and KServe."""
    if not DNS_LABEL.match(name):
        raise ValueError(
            f"model name {name!r} is not a DNS-1123 label (lower-case letters, digits and '-', "
            "at most 63, starting and ending with a letter or digit), so KServe would rename it and "
            "its URL would differ from TF Serving's; export again with --name, e.g. "
            f"{re.sub(r'[^a-z0-9-]+', '-', name.lower()).strip('-')[:63]!r}"
        )
    return name


def _serialize(service) -> dict:
    from kserve.api_client import ApiClient

    return ApiClient().sanitize_for_serialization(service)


def tensorflow_service(name: str, storage_uri: str, runtime_version: str, namespace: str | None = None) -> dict:
    """An InferenceService on KServe's TensorFlow runtime, pinned to `runtime_version`
    (TF Serving matching the TensorFlow that wrote the SavedModel)."""
    import kserve
    from kubernetes.client import V1ObjectMeta, V1ResourceRequirements

    service = kserve.V1beta1InferenceService(
        api_version="serving.kserve.io/v1beta1",
        kind="InferenceService",
        metadata=V1ObjectMeta(name=name, namespace=namespace),
        spec=kserve.V1beta1InferenceServiceSpec(
            predictor=kserve.V1beta1PredictorSpec(
                model=kserve.V1beta1ModelSpec(
                    name="kserve-container",  # KServe's own name for it (the SDK's default is "")
                    model_format=kserve.V1beta1ModelFormat(name="tensorflow"),
                    runtime_version=runtime_version,
                    storage_uri=storage_uri,
                    resources=V1ResourceRequirements(**RESOURCES),
                )
            )
        ),
    )
    return _serialize(service)


def termination_grace_seconds() -> int:
    """The pod's termination grace: the preStop delay, then `keras-seq serve`'s drain (its grace with
    the listener open, then the in-flight bound), and a margin, so Kubernetes never kills a drain."""
    from keras_seq.serving.server import DRAIN_GRACE, DRAIN_SECONDS

    return int(PRE_STOP_S + DRAIN_GRACE + DRAIN_SECONDS + 3)


def onnx_service(name: str, image: str, namespace: str | None = None) -> dict:
    """An InferenceService running the ONNX server's image as a custom predictor
    (KServe routes to port 8080; the REST paths are TF Serving's)."""
    import kserve
    from kubernetes.client import (
        V1Container,
        V1ContainerPort,
        V1ExecAction,
        V1HTTPGetAction,
        V1Lifecycle,
        V1LifecycleHandler,
        V1ObjectMeta,
        V1Probe,
        V1ResourceRequirements,
    )

    container = V1Container(
        name="kserve-container",
        image=image,
        ports=[V1ContainerPort(container_port=SERVE_PORT, protocol="TCP")],
        # 503 from SIGTERM on (the server drains), so the pod leaves the Service at once
        readiness_probe=V1Probe(http_get=V1HTTPGetAction(path=f"/v1/models/{name}", port=SERVE_PORT)),
        # before SIGTERM: time for the endpoints controller to stop routing here
        lifecycle=V1Lifecycle(pre_stop=V1LifecycleHandler(_exec=V1ExecAction(command=["sleep", str(PRE_STOP_S)]))),
        resources=V1ResourceRequirements(**RESOURCES),
    )
    predictor = kserve.V1beta1PredictorSpec(
        containers=[container], termination_grace_period_seconds=termination_grace_seconds()
    )
    service = kserve.V1beta1InferenceService(
        api_version="serving.kserve.io/v1beta1",
        kind="InferenceService",
        metadata=V1ObjectMeta(name=f"{name}-onnx", namespace=namespace),
        spec=kserve.V1beta1InferenceServiceSpec(predictor=predictor),
    )
    return _serialize(service)


def dockerfile(name: str, wheel: str, versions_path: str, policy: str = "latest:1", labels: dict | None = None) -> str:
    """The ONNX server's Dockerfile; the build context is the kit folder. The image holds the
    version folders `keras-seq serve` polls (mount a volume at /models/NAME to roll new ones in)."""
    health = (
        f"import urllib.request; urllib.request.urlopen('http://127.0.0.1:{SERVE_PORT}/v1/models/{name}', timeout=3)"
    )
    command = ["keras-seq", "serve", f"/models/{name}", "--name", name, "--versions", policy]
    for label, version in sorted((labels or {}).items()):
        command += ["--labels", f"{label}={version}"]
    command += ["--host", "0.0.0.0", "--port", str(SERVE_PORT)]
    return f"""# keras-seq serve in a container: onnxruntime, no TensorFlow.
# Build from the kit folder:  docker build -f onnx/{name}/Dockerfile -t keras-seq-{name} .
# Run:                        docker run -p {SERVE_PORT}:{SERVE_PORT} keras-seq-{name}
FROM python:3.11-slim
COPY onnx/wheels/{wheel} /tmp/
RUN pip install --no-cache-dir "/tmp/{wheel}[serving]" && rm /tmp/{wheel}
RUN useradd --create-home --uid 10001 serve
COPY --chown=serve {versions_path} /models/{name}
USER serve
EXPOSE {SERVE_PORT}
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s CMD ["python", "-c", {json.dumps(health)}]
# Inside the container the server must listen on every interface (0.0.0.0): the port is published by Docker.
# SIGTERM (docker stop, Kubernetes) drains: readiness 503 at once, requests in flight finish.
STOPSIGNAL SIGTERM
CMD {json.dumps(command)}
"""


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) per instruction; comments and blank lines skipped."""
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            out.append((keyword.upper(), rest.strip()))
    return out
