"""Training on a Kubernetes cluster (`keras-seq kit --train CONFIG ... --out DIR`), from the real schemas.

* ``tfjob-NAME.yaml`` -- a Kubeflow ``TFJob`` (`kubeflow.training` SDK models, the Training
  Operator's v1 API): one Chief and ``workers - 1`` Workers, each running
  ``keras-seq train CONFIG --strategy multi_worker --out /runs/NAME`` in the training image. The
  operator writes each pod's ``TF_CONFIG``; the run directory (the chief's files and its
  ``backup/``) lives on a shared PersistentVolumeClaim mounted at ``/runs`` in every pod, so a
  restarted pod resumes from the last epoch backed up there. ``restartPolicy: OnFailure``: when
  one worker dies, the others fail their next all-reduce (in about 10 s) and every pod restarts;
  ``runPolicy.backoffLimit`` bounds the restarts.
* ``data-service-NAME.yaml`` (with ``data_service_workers``) -- the tf.data service: a dispatcher
  Deployment and Service (its journal on the shared volume, so a restarted dispatcher resumes its
  jobs) and a worker Deployment (each worker gives the dispatcher its pod IP). The TFJob is then a
  single Chief reading its batches from the service (``train.data_service``).
* A NetworkPolicy (in the TFJob's file): only the job's own pods reach its pods, since
  TensorFlow's gRPC servers (the collectives, the tf.data service) listen on every interface.
* ``train/Dockerfile`` -- the training image: ``python:3.11-slim`` with the keras-seq wheel's
  ``[tf,data,g2p]`` extras, a non-root user, and the config (a shipped one is read from the package).

Every manifest is built from the SDK's classes (a misspelt field is an error here, not a manifest
the cluster rejects) and serialized by `kubernetes.client.ApiClient.sanitize_for_serialization`.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from keras_seq.deploy.kserve import check_dns_name

RUNS_MOUNT = "/runs"
TF_PORT = 2222  # the Training Operator's default TFJob port
DISPATCHER_PORT, WORKER_PORT = 5050, 5051
CONTAINER = "tensorflow"  # the container name the Training Operator looks for in a TFJob


def _models():
    try:
        from kubeflow.training import models
    except ImportError:
        raise ImportError(
            "the training kit writes Kubeflow TFJobs with the Training Operator's SDK: pip install keras-seq[kubeflow]"
        ) from None
    return models


def _serialize(obj) -> dict:
    from kubernetes.client import ApiClient

    return ApiClient().sanitize_for_serialization(obj)


def _resources(cpu: str, memory: str, gpus: int):
    from kubernetes.client import V1ResourceRequirements

    limits = {"cpu": cpu, "memory": memory, **({"nvidia.com/gpu": str(gpus)} if gpus else {})}
    return V1ResourceRequirements(requests={"cpu": cpu, "memory": memory}, limits=limits)


def _pod(name: str, image: str, command: list[str], claim: str, resources, labels: dict, ports=(), env=()):
    from kubernetes.client import (
        V1Container,
        V1ContainerPort,
        V1ObjectMeta,
        V1PersistentVolumeClaimVolumeSource,
        V1PodSpec,
        V1PodTemplateSpec,
        V1Volume,
        V1VolumeMount,
    )

    container = V1Container(
        name=name,
        image=image,
        command=command,
        resources=resources,
        env=list(env) or None,
        ports=[V1ContainerPort(container_port=p, name=n) for n, p in ports] or None,
        volume_mounts=[V1VolumeMount(name="runs", mount_path=RUNS_MOUNT)],
    )
    volume = V1Volume(name="runs", persistent_volume_claim=V1PersistentVolumeClaimVolumeSource(claim_name=claim))
    return V1PodTemplateSpec(
        metadata=V1ObjectMeta(labels=labels), spec=V1PodSpec(containers=[container], volumes=[volume])
    )


def train_command(config: str, name: str, strategy: str, sets: list[str]) -> list[str]:
    """The command every pod of the job runs (the same on each: the chief is chosen by TF_CONFIG)."""
    command = ["keras-seq", "train", config, "--out", f"{RUNS_MOUNT}/{name}", "--strategy", strategy, "--progress", "2"]
    for item in sets:
        command += ["--set", item]
    return command


def tfjob(
    name: str,
    command: list[str],
    *,
    workers: int,
    image: str,
    claim: str,
    cpu: str,
    memory: str,
    gpus: int = 0,
    restarts: int = 3,
    namespace: str | None = None,
) -> dict:
    """The TFJob: a Chief and ``workers - 1`` Workers running `command` on the shared volume `claim`."""
    from kubernetes.client import V1ObjectMeta

    models = _models()
    labels = {"app.kubernetes.io/name": "keras-seq", "app.kubernetes.io/part-of": name}
    template = _pod(
        CONTAINER, image, command, claim, _resources(cpu, memory, gpus), labels, ports=[("tfjob-port", TF_PORT)]
    )
    replicas = {"Chief": models.KubeflowOrgV1ReplicaSpec(replicas=1, restart_policy="OnFailure", template=template)}
    if workers > 1:
        replicas["Worker"] = models.KubeflowOrgV1ReplicaSpec(
            replicas=workers - 1, restart_policy="OnFailure", template=template
        )
    job = models.KubeflowOrgV1TFJob(
        api_version="kubeflow.org/v1",
        kind="TFJob",
        metadata=V1ObjectMeta(name=name, namespace=namespace),
        spec=models.KubeflowOrgV1TFJobSpec(
            run_policy=models.KubeflowOrgV1RunPolicy(clean_pod_policy="None", backoff_limit=restarts),
            tf_replica_specs=replicas,
        ),
    )
    return _serialize(job)


def network_policy(name: str, namespace: str | None = None) -> dict:
    """Only this job's pods reach its pods: TensorFlow's gRPC servers (the workers' collectives, the
    tf.data service) listen on every interface and take no credentials."""
    from kubernetes.client import (
        V1LabelSelector,
        V1NetworkPolicy,
        V1NetworkPolicyIngressRule,
        V1NetworkPolicyPeer,
        V1NetworkPolicySpec,
        V1ObjectMeta,
    )

    part_of = V1LabelSelector(match_labels={"app.kubernetes.io/part-of": name})
    return _serialize(
        V1NetworkPolicy(
            api_version="networking.k8s.io/v1",
            kind="NetworkPolicy",
            metadata=V1ObjectMeta(name=name, namespace=namespace),
            spec=V1NetworkPolicySpec(
                pod_selector=part_of,
                policy_types=["Ingress"],
                ingress=[V1NetworkPolicyIngressRule(_from=[V1NetworkPolicyPeer(pod_selector=part_of)])],
            ),
        )
    )


def data_service(name: str, image: str, workers: int, claim: str, namespace: str | None = None) -> list[dict]:
    """The tf.data service: a dispatcher Deployment and its Service, and a worker Deployment."""
    from kubernetes.client import (
        V1Deployment,
        V1DeploymentSpec,
        V1EnvVar,
        V1EnvVarSource,
        V1LabelSelector,
        V1ObjectFieldSelector,
        V1ObjectMeta,
        V1Service,
        V1ServicePort,
        V1ServiceSpec,
    )

    part_of = {"app.kubernetes.io/part-of": name}
    dispatcher_name = f"{name}-data-dispatcher"
    small = _resources("1", "2Gi", 0)

    def deployment(component: str, replicas: int, command: list[str], port: tuple, env=()):
        labels = {**part_of, "app.kubernetes.io/component": component}
        return V1Deployment(
            api_version="apps/v1",
            kind="Deployment",
            metadata=V1ObjectMeta(name=f"{name}-{component}", namespace=namespace),
            spec=V1DeploymentSpec(
                replicas=replicas,
                selector=V1LabelSelector(match_labels=labels),
                template=_pod(component, image, command, claim, small, labels, ports=[port], env=env),
            ),
        )

    dispatcher = deployment(
        "data-dispatcher",
        1,
        [
            "keras-seq",
            "data-service",
            "dispatcher",
            "--port",
            str(DISPATCHER_PORT),
            "--work-dir",
            f"{RUNS_MOUNT}/{name}-dispatcher",
        ],
        ("dispatcher", DISPATCHER_PORT),
    )
    service = V1Service(
        api_version="v1",
        kind="Service",
        metadata=V1ObjectMeta(name=dispatcher_name, namespace=namespace),
        spec=V1ServiceSpec(
            selector={**part_of, "app.kubernetes.io/component": "data-dispatcher"},
            ports=[V1ServicePort(port=DISPATCHER_PORT, target_port=DISPATCHER_PORT, name="dispatcher")],
        ),
    )
    pod_ip = V1EnvVar(
        name="POD_IP", value_from=V1EnvVarSource(field_ref=V1ObjectFieldSelector(field_path="status.podIP"))
    )
    worker = deployment(
        "data-worker",
        workers,
        [
            "keras-seq",
            "data-service",
            "worker",
            "--dispatcher",
            f"{dispatcher_name}:{DISPATCHER_PORT}",
            "--port",
            str(WORKER_PORT),
            "--host",
            "$(POD_IP)",
        ],
        ("worker", WORKER_PORT),
        env=[pod_ip],
    )
    return [_serialize(x) for x in (dispatcher, service, worker)]


def train_dockerfile(wheel: str, config_path: str | None) -> str:
    """The training image's Dockerfile; the build context is the kit folder."""
    copy = f"COPY --chown=train train/{Path(config_path).name} /app/{Path(config_path).name}\n" if config_path else ""
    return f"""# keras-seq train in a container (TensorFlow on CPU; for GPUs start FROM a CUDA image).
# Build from the kit folder:  docker build -f train/Dockerfile -t keras-seq-train .
FROM python:3.11-slim
COPY train/{wheel} /tmp/
RUN pip install --no-cache-dir "/tmp/{wheel}[tf,data,g2p]" && rm /tmp/{wheel}
RUN useradd --create-home --uid 10001 train
WORKDIR /app
{copy}USER train
ENTRYPOINT []
CMD ["keras-seq", "--help"]
"""


def write_training_kit(
    config: str,
    out: str | Path,
    *,
    workers: int = 2,
    image: str = "keras-seq-train:latest",
    claim: str = "keras-seq-runs",
    sets: list[str] | tuple = (),
    name: str | None = None,
    data_service_workers: int = 0,
    cpu: str = "4",
    memory: str = "8Gi",
    gpus: int = 0,
    restarts: int = 3,
    wheel: str | Path | None = None,
    namespace: str | None = None,
) -> dict:
    """Writes the training kit for `config` (a shipped config's name or a TOML file); returns
    {"files": [paths], "run": the run directory in the pods, "command": what each pod runs}."""
    import yaml

    from keras_seq.deploy.tfserving import build_wheel, write_files
    from keras_seq.pipelines.config import load_config, resolve_config

    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"--workers must be a positive integer; received {workers!r}")
    path = resolve_config(config)
    shipped = not Path(config).exists()
    service = f"grpc://{name or path.stem}-data-dispatcher:{DISPATCHER_PORT}"
    if data_service_workers:
        if workers > 1:
            raise ValueError(
                "the tf.data service feeds one trainer: give --data-service-workers with --workers 1 "
                "(the trainer can still use several GPUs: strategy mirrored)"
            )
        sets = [*sets, f'train.data_service="{service}"']
    if any(item.split("=", 1)[0].strip() == "train.strategy" for item in sets):
        raise ValueError("the kit sets train.strategy itself (multi_worker for --workers > 1, else mirrored)")
    strategy = "multi_worker" if workers > 1 else "mirrored"
    resolved = load_config(path, [*sets, f'train.strategy="{strategy}"'])  # a config error shows here, not in pods
    if not resolved["data"]["source"]:
        raise ValueError(
            f'{path.name} names no data.source: add --set data.source="{RUNS_MOUNT}/data/..." (a path '
            "on the shared volume) or a tfds: name"
        )
    name = check_dns_name(name or path.stem.replace("_", "-"))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    config_in_image = path.stem if shipped else f"/app/{path.name}"
    command = train_command(config_in_image, name, strategy, list(sets))
    job = tfjob(
        name,
        command,
        workers=workers,
        image=image,
        claim=claim,
        cpu=cpu,
        memory=memory,
        gpus=gpus,
        restarts=restarts,
        namespace=namespace,
    )
    files = {
        f"tfjob-{name}.yaml": (
            f"# kubectl apply -f tfjob-{name}.yaml -- {workers} pod(s) (Chief + {workers - 1} Worker), each running\n"
            f"#   {' '.join(command)}\n"
            f"# on the PersistentVolumeClaim {claim!r} at {RUNS_MOUNT} (ReadWriteMany: every pod reads the data\n"
            f"# and the chief's backup there; point data.source at a path under {RUNS_MOUNT}).\n"
            f"# The run: {RUNS_MOUNT}/{name}.\n"
            f"# The NetworkPolicy lets only this job's pods reach them.\n"
            + yaml.safe_dump_all([job, network_policy(name, namespace)], sort_keys=False)
        )
    }
    if data_service_workers:
        files[f"data-service-{name}.yaml"] = (
            f"# kubectl apply -f data-service-{name}.yaml before the TFJob: a dispatcher and {data_service_workers} "
            f"worker(s); the trainer reads {service}\n"
            + yaml.safe_dump_all(data_service(name, image, data_service_workers, claim, namespace), sort_keys=False)
        )
    train_dir = out / "train"
    wheel_name = build_wheel(wheel, train_dir)
    if not shipped:
        shutil.copy2(path, train_dir / path.name)
    files["train/Dockerfile"] = train_dockerfile(wheel_name, None if shipped else str(path))
    return {"files": write_files(out, files), "run": f"{RUNS_MOUNT}/{name}", "command": command, "image": image}
