"""The multi-worker training kit (Kubeflow TFJob, tf.data service Deployments) and the checks
that refuse a bad distribution setup before TensorFlow starts."""

from __future__ import annotations

import json

import pytest
import yaml

from tests.helpers import cli_in_process


@pytest.fixture()
def wheel(tmp_path):
    path = tmp_path / "keras_seq-0.0.0-py3-none-any.whl"  # the kit copies it; a real one is built when none is given
    path.write_bytes(b"wheel")
    return path


def _deserialize(document: dict, kind: str):
    from kubeflow.training.api_client import ApiClient

    class Response:
        data = json.dumps(document)

    return ApiClient().deserialize(Response(), kind)


def test_tfjob_has_a_chief_workers_the_shared_volume_and_one_command(tmp_path, wheel):
    code, out, err = cli_in_process(
        "kit",
        "--train",
        "imdb_sentiment",
        "--workers",
        "4",
        "--image",
        "reg/train:1",
        "--set",
        'data.source="/runs/data/aclImdb_v1.tar.gz"',
        "--claim",
        "runs-rwx",
        "--gpus",
        "1",
        "--wheel",
        str(wheel),
        "--out",
        str(tmp_path / "kit"),
    )
    assert code == 0, err
    job, policy = yaml.safe_load_all((tmp_path / "kit" / "tfjob-imdb-sentiment.yaml").read_text())
    assert (job["apiVersion"], job["kind"], job["metadata"]["name"]) == ("kubeflow.org/v1", "TFJob", "imdb-sentiment")
    replicas = job["spec"]["tfReplicaSpecs"]
    assert replicas["Chief"]["replicas"] == 1 and replicas["Worker"]["replicas"] == 3
    for role in ("Chief", "Worker"):
        spec = replicas[role]
        assert spec["restartPolicy"] == "OnFailure"  # a lost worker fails the others: every pod restarts, resumes
        pod = spec["template"]["spec"]
        (container,) = pod["containers"]
        assert container["name"] == "tensorflow" and container["image"] == "reg/train:1"  # the operator's name
        command = container["command"]
        assert command[:5] == ["keras-seq", "train", "imdb_sentiment", "--out", "/runs/imdb-sentiment"]
        assert command[command.index("--strategy") + 1] == "multi_worker"
        assert 'data.source="/runs/data/aclImdb_v1.tar.gz"' in command
        assert container["volumeMounts"] == [{"mountPath": "/runs", "name": "runs"}]
        assert pod["volumes"] == [{"name": "runs", "persistentVolumeClaim": {"claimName": "runs-rwx"}}]
        assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
        assert spec["template"]["metadata"]["labels"]["app.kubernetes.io/part-of"] == "imdb-sentiment"
    assert job["spec"]["runPolicy"]["backoffLimit"] == 3
    # It is a TFJob as the Training Operator's own SDK reads it.
    parsed = _deserialize(job, "KubeflowOrgV1TFJob")
    assert parsed.spec.tf_replica_specs["Worker"].replicas == 3
    assert policy["kind"] == "NetworkPolicy"
    assert policy["spec"]["ingress"][0]["from"][0]["podSelector"] == policy["spec"]["podSelector"]
    assert "FROM python:3.11-slim" in (tmp_path / "kit" / "train" / "Dockerfile").read_text()
    assert (tmp_path / "kit" / "train" / wheel.name).exists()


def test_kit_with_the_data_service_feeds_one_trainer(tmp_path, wheel):
    config = tmp_path / "mine.toml"
    config.write_text('task = "classify"\n[data]\nsource = "/runs/data/reviews"\n')
    code, _, err = cli_in_process(
        "kit",
        "--train",
        str(config),
        "--workers",
        "1",
        "--data-service-workers",
        "3",
        "--wheel",
        str(wheel),
        "--out",
        str(tmp_path / "kit"),
    )
    assert code == 0, err
    job, _ = yaml.safe_load_all((tmp_path / "kit" / "tfjob-mine.yaml").read_text())
    assert list(job["spec"]["tfReplicaSpecs"]) == ["Chief"]
    command = job["spec"]["tfReplicaSpecs"]["Chief"]["template"]["spec"]["containers"][0]["command"]
    assert command[2] == "/app/mine.toml" and 'train.data_service="grpc://mine-data-dispatcher:5050"' in command
    dispatcher, service, worker = yaml.safe_load_all((tmp_path / "kit" / "data-service-mine.yaml").read_text())
    assert dispatcher["kind"] == "Deployment" and dispatcher["spec"]["replicas"] == 1
    d_command = dispatcher["spec"]["template"]["spec"]["containers"][0]["command"]
    assert d_command[:4] == ["keras-seq", "data-service", "dispatcher", "--port"] and "--work-dir" in d_command
    assert service["kind"] == "Service" and service["metadata"]["name"] == "mine-data-dispatcher"
    assert service["spec"]["ports"][0]["port"] == 5050
    assert worker["spec"]["replicas"] == 3
    w_container = worker["spec"]["template"]["spec"]["containers"][0]
    assert w_container["command"][w_container["command"].index("--dispatcher") + 1] == "mine-data-dispatcher:5050"
    assert w_container["env"][0]["valueFrom"]["fieldRef"]["fieldPath"] == "status.podIP"
    assert (
        "COPY --chown=train train/mine.toml /app/mine.toml" in (tmp_path / "kit" / "train" / "Dockerfile").read_text()
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (["--workers", "2", "--data-service-workers", "2"], "feeds one trainer"),
        (["--set", 'train.strategy="default"'], "the kit sets train.strategy itself"),
        ([], "names no data.source"),
    ],
)
def test_kit_refuses_what_the_job_would_fail_on(tmp_path, wheel, args, message):
    code, _, err = cli_in_process("kit", "--train", "demo", *args, "--wheel", str(wheel), "--out", str(tmp_path))
    assert code == 2 and message in err


@pytest.mark.parametrize(
    "sets, message",
    [
        (['train.strategy="ring"'], "train.strategy must be one of"),
        (['train.data_service="localhost:5050"'], "train.data_service must be 'grpc://HOST:PORT'"),
        (['train.data_service="grpc://h:1"', "train.data_service_shards=0"], "data_service_shards must be a positive"),
        (['train.data_service="grpc://h:1"', 'train.strategy="multi_worker"'], "feeds one trainer"),
    ],
)
def test_config_refuses_bad_distribution_settings(sets, message):
    from keras_seq.pipelines.config import load_config

    with pytest.raises(ValueError, match=message):
        load_config(None, sets)


def test_a_language_model_is_refused_by_the_data_service():
    from keras_seq.pipelines.config import load_config

    with pytest.raises(ValueError, match="reads one token stream"):
        load_config(None, ['task="lm"', 'train.data_service="grpc://h:1"'])


@pytest.mark.parametrize(
    "tf_config, message",
    [
        (None, "TF_CONFIG environment variable, which is not set"),
        ("{not json", "TF_CONFIG is not valid JSON"),
        ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "ps", "index": 0}}', "'task.type' must name a job"),
        ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 1}}', "'task.index' must be 0 .. 0"),
        ('{"cluster": {"worker": ["a"]}, "task": {"type": "worker", "index": 0}}', "'cluster.worker' must be a list"),
        ('{"cluster": {"worker": ["a:1"], "ps": ["b:2"]}, "task": {"type": "worker", "index": 0}}', "takes 'chief'"),
    ],
)
def test_tf_config_errors_name_the_field(tf_config, message):
    from keras_seq.pipelines.distribute import read_tf_config

    with pytest.raises(ValueError, match=message):
        read_tf_config({} if tf_config is None else {"TF_CONFIG": tf_config})


def test_the_training_operators_tf_config_is_read():
    """What the Training Operator writes for a Chief and two Workers."""
    from keras_seq.pipelines.distribute import read_tf_config

    cluster = {"chief": ["job-chief-0.ns.svc:2222"], "worker": ["job-worker-0.ns.svc:2222", "job-worker-1.ns.svc:2222"]}
    for task in ({"type": "chief", "index": 0}, {"type": "worker", "index": 1}):
        assert read_tf_config({"TF_CONFIG": json.dumps({"cluster": cluster, "task": task})})["task"] == task
