"""Serving: the deployment kit parses, the REST client against the local KServe
server equals the SavedModel, the gRPC client builds/parses the real protos and
talks to a PredictionService, and failures give clear errors (slow: trains and
exports a small model)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from concurrent import futures
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("kserve")
pytest.importorskip("tensorflow_serving")

from keras_seq.deploy.kserve import check_dns_name  # noqa: E402
from keras_seq.deploy.tfserving import per_model, version_policy, write_kit  # noqa: E402
from keras_seq.pipelines.synthetic import DEMO_SENTENCES  # noqa: E402
from keras_seq.serving.client import GrpcClient, RestClient, ServingError  # noqa: E402
from keras_seq.serving.savedmodel_predictor import SavedModelPredictor, latest_version  # noqa: E402
from tests.helpers import free_port, served  # noqa: E402

pytestmark = pytest.mark.slow
TEXTS = [*DEMO_SENTENCES, "", "good \U0001f600 , not bad"]


@pytest.fixture(scope="module")
def exported(demo_export):
    return demo_export


@pytest.fixture(scope="module")
def expected(exported):
    return SavedModelPredictor(exported).predict(TEXTS)


@pytest.fixture(scope="module")
def server(exported):
    with served(exported, "--labels", "stable=1") as (port, process):
        yield port
    assert process.returncode == 0  # SIGTERM: a clean shutdown


def _close(a: list[dict], b: list[dict]) -> None:
    assert [x["label"] for x in a] == [x["label"] for x in b]
    for x, y in zip(a, b):
        assert x["probabilities"].keys() == y["probabilities"].keys()
        np.testing.assert_allclose(list(x["probabilities"].values()), list(y["probabilities"].values()), atol=1e-5)


@pytest.mark.parametrize("form", ["instances", "inputs"])
def test_rest_client_against_local_server_equals_savedmodel(server, expected, form):
    client = RestClient(f"http://127.0.0.1:{server}", "reviews", form=form)
    _close(client.predict(TEXTS), expected)
    # invalid UTF-8 travels as {"b64": ...}; both runtimes replace it
    assert client.predict([b"good \xff not bad"])[0]["label"] in ("pos", "neg")


def test_concurrent_clients_are_batched_and_each_gets_its_own_answers(server, expected):
    # the server batches by default: 24 clients at once, each its own rotation of the texts
    answers: dict = {}

    def client(i: int) -> None:
        rest = RestClient(f"http://127.0.0.1:{server}", "reviews")
        answers[i] = rest.predict(TEXTS[i % len(TEXTS) :] + TEXTS[: i % len(TEXTS)])

    threads = [threading.Thread(target=client, args=(i,)) for i in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, got in answers.items():
        k = i % len(TEXTS)
        _close(got, expected[k:] + expected[:k])
    assert len(answers) == 24


def test_server_answers_bad_requests_with_4xx_and_keeps_serving(server):
    import urllib.request

    url = f"http://127.0.0.1:{server}/v1/models/reviews:predict"
    for body in (
        b"{not json",
        b'{"instances": 3}',
        b'{"foo": []}',
        b'{"instances": [1, 2]}',
        b'{"instances": []}',
        json.dumps({"instances": ["a"] * 300}).encode(),
        b'{"instances": ["a"], "signature_name": "nope"}',
    ):
        request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as error:
            urllib.request.urlopen(request, timeout=10)
        assert 400 <= error.value.code < 500, body
        assert json.loads(error.value.read())["error"]
    with pytest.raises(ServingError, match="HTTP 404"):
        RestClient(f"http://127.0.0.1:{server}", "no-such-model", retries=0).predict(["x"])
    assert RestClient(f"http://127.0.0.1:{server}", "reviews").predict(["still here"])[0]["label"]


def test_rest_client_errors_name_the_problem():
    port = free_port()
    with pytest.raises(ServingError, match=r"connection refused .*after 2 attempts"):
        RestClient(f"http://127.0.0.1:{port}", "m", retries=1, backoff=0.01).predict(["x"])
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # accepts connections, never answers
    try:
        with pytest.raises(ServingError, match=r"no answer within 0.3 s.*after 2 attempts"):
            RestClient(
                f"http://127.0.0.1:{silent.getsockname()[1]}", "m", timeout=0.3, retries=1, backoff=0.01
            ).predict(["x"])
    finally:
        silent.close()
    with pytest.raises(TypeError):
        RestClient("http://127.0.0.1:1", "m").predict("one string")


def test_grpc_client_protos_and_a_real_prediction_service(exported, expected):
    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    client = GrpcClient("127.0.0.1:1", "reviews", version=1)
    request = client.build_request(TEXTS)
    assert request.model_spec.name == "reviews" and request.model_spec.version.value == 1
    assert tf.make_ndarray(request.inputs["text"]).tolist() == [t.encode() for t in TEXTS]
    model = tf.saved_model.load(str(latest_version(exported)))

    class Service(prediction_service_pb2_grpc.PredictionServiceServicer):
        def Predict(self, request, context):  # what TF Serving does with the request
            fn = model.signatures[request.model_spec.signature_name]
            outputs = fn(text=tf.constant(tf.make_ndarray(request.inputs["text"])))
            response = predict_pb2.PredictResponse()
            for key, value in outputs.items():
                response.outputs[key].CopyFrom(tf.make_tensor_proto(value.numpy()))
            return response

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(Service(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        _close(GrpcClient(f"127.0.0.1:{port}", "reviews").predict(TEXTS), expected)
    finally:
        server.stop(0)
    with pytest.raises(ServingError, match="UNAVAILABLE.*after 2 attempts"):
        GrpcClient(f"127.0.0.1:{free_port()}", "reviews", retries=1, backoff=0.01, timeout=2).predict(["x"])


def test_deployment_kit_files_come_from_the_real_schemas(exported, tmp_path):
    import yaml
    from google.protobuf import text_format

    from keras_seq.deploy.kserve import dockerfile_instructions, onnx_service, tensorflow_service
    from keras_seq.deploy.protos import serving_messages

    out = tmp_path / "kit"
    kit = write_kit(
        [exported],
        out,
        versions=["reviews=specific:1,2"],
        storage_uri="gs://bucket/reviews",
        max_batch_size=16,
        onnx=True,
        labels=["stable=1", "canary=2"],
    )
    assert {str(p.relative_to(out)) for p in kit["files"]} == {
        "models.config",
        "batching_parameters.txt",
        "monitoring.config",
        "docker-compose.yml",
        "kserve-reviews.yaml",
        "kserve-reviews-onnx.yaml",
        "onnx/reviews/Dockerfile",
    }
    messages = serving_messages()
    config = text_format.Parse((out / "models.config").read_text(), messages["ModelServerConfig"]())
    entry = config.model_config_list.config[0]
    assert entry.name == "reviews" and entry.base_path == "/models/reviews" and entry.model_platform == "tensorflow"
    assert list(entry.model_version_policy.specific.versions) == [1, 2]
    assert dict(entry.version_labels) == {"stable": 1, "canary": 2}
    # keras-seq serve reads the same file without TensorFlow, to the same models, policies and labels
    from keras_seq.serving.model_config import ModelEntry, VersionPolicy, read_model_config

    assert read_model_config(out / "models.config") == [
        ModelEntry(
            "reviews", Path("/models/reviews"), VersionPolicy("specific", versions=(1, 2)), {"stable": 1, "canary": 2}
        )
    ]
    batching = text_format.Parse((out / "batching_parameters.txt").read_text(), messages["BatchingParameters"]())
    assert batching.max_batch_size.value == 16 and batching.batch_timeout_micros.value == 2000
    assert batching.pad_variable_length_inputs
    # keras-seq serve --batching-parameters-file reads the same file to the same numbers
    from keras_seq.serving.batching import BatchingOptions, read_batching_parameters

    assert read_batching_parameters(out / "batching_parameters.txt") == BatchingOptions(16, 2000, 100, 4)
    monitoring = text_format.Parse((out / "monitoring.config").read_text(), messages["MonitoringConfig"]())
    assert monitoring.prometheus_config.enable
    # the TF Serving version is the TensorFlow that wrote the export
    written_by = json.loads((exported / "export.json").read_text())["tools"]["tensorflow"]
    serving_version = ".".join(written_by.split(".")[:2]) + ".0"
    compose = yaml.safe_load((out / "docker-compose.yml").read_text())
    service = compose["services"]["tfserving"]
    assert service["image"] == f"tensorflow/serving:{serving_version}" and "8501:8501" in service["ports"]
    source, target, _ = service["volumes"][0].split(":")
    assert target == "/models/reviews" and ((out / source) / "1" / "saved_model.pb").exists()
    assert "--model_config_file=/config/models.config" in service["command"]
    # KServe: re-read the YAML, compare field by field with the SDK objects' serialization
    manifest = yaml.safe_load((out / "kserve-reviews.yaml").read_text())
    assert manifest == tensorflow_service("reviews", "gs://bucket/reviews", serving_version)
    model = manifest["spec"]["predictor"]["model"]
    assert manifest["kind"] == "InferenceService" and manifest["apiVersion"] == "serving.kserve.io/v1beta1"
    assert model["modelFormat"]["name"] == "tensorflow" and model["runtimeVersion"] == serving_version
    assert model["storageUri"] == "gs://bucket/reviews" and manifest["metadata"]["name"] == "reviews"
    onnx_manifest = yaml.safe_load((out / "kserve-reviews-onnx.yaml").read_text())
    assert onnx_manifest == onnx_service("reviews", "keras-seq-reviews:latest")
    container = onnx_manifest["spec"]["predictor"]["containers"][0]
    assert container["ports"][0]["containerPort"] == 8080
    assert container["readinessProbe"]["httpGet"]["path"] == "/v1/models/reviews"
    # a rolling update drains: the preStop delay, then SIGTERM's drain, all inside the pod's grace period
    assert container["lifecycle"]["preStop"]["exec"]["command"] == ["sleep", "5"]
    assert onnx_manifest["spec"]["predictor"]["terminationGracePeriodSeconds"] >= 5 + 2 + 30
    # the Dockerfile, instruction by instruction
    steps = dockerfile_instructions((out / "onnx" / "reviews" / "Dockerfile").read_text())
    keywords = [k for k, _ in steps]
    assert steps[0][0] == "FROM" and steps[0][1].startswith("python:3.11-slim")
    wheel_name = next(p.name for p in (out / "onnx" / "wheels").glob("keras_seq-*.whl"))
    assert any(k == "RUN" and f"{wheel_name}[serving]" in a for k, a in steps)
    assert ("USER", "serve") in steps and keywords.index("USER") < keywords.index("CMD")
    assert [a for k, a in steps if k == "EXPOSE"] == ["8080"] and "HEALTHCHECK" in keywords
    command = json.loads(dict(steps)["CMD"])
    assert command[:2] == ["keras-seq", "serve"] and command[command.index("--host") + 1] == "0.0.0.0"
    assert command[command.index("--versions") + 1] == "specific:1,2" and "stable=1" in command
    copied = out / "onnx" / "reviews" / "versions"  # the version folders' ONNX halves, as the server polls them
    assert sorted(p.name for p in copied.iterdir()) == ["1"] and (copied / "1" / "onnx" / "model.onnx").exists()
    assert kit["urls"]["KServe, TensorFlow runtime"]["reviews"].endswith("/v1/models/reviews:predict")
    # names that KServe would rewrite are refused; a storage URI is per model
    with pytest.raises(ValueError, match="DNS-1123"):
        check_dns_name("my_model.v2")
    with pytest.raises(ValueError, match="one per model"):
        per_model("--storage-uri", ["gs://b/x"], ["a", "b"], None, shared=False)
    assert per_model("--versions", ["all", "b=latest:2"], ["a", "b"], "latest:1") == {"a": "all", "b": "latest:2"}
    with pytest.raises(ValueError, match="version policy"):
        version_policy("newest")


def test_onnx_serving_path_needs_no_tensorflow(exported, expected):
    # TensorFlow (and keras) made unimportable: the predictor and the server module still work.
    code = (
        "import sys, json\n"
        "for m in ('tensorflow', 'keras', 'tf_keras'): sys.modules[m] = None\n"
        "from keras_seq.serving.predictor import OnnxPredictor\nimport keras_seq.serving.server\n"
        f"print(json.dumps(OnnxPredictor(sys.argv[1]).predict({TEXTS!r})))\n"
    )
    result = subprocess.run([sys.executable, "-c", code, str(exported)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    _close(json.loads(result.stdout.strip().splitlines()[-1]), expected)


def test_onnx_predictor_is_thread_safe(exported):
    from keras_seq.serving.predictor import OnnxPredictor

    predictor = OnnxPredictor(exported)
    texts = [f"{s} {i}" for i in range(8) for s in DEMO_SENTENCES]
    serial = predictor.predict(texts)
    results: dict = {}

    def work(i):
        results[i] = predictor.predict(texts[i:] + texts[:i])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, answers in results.items():
        assert answers == serial[i:] + serial[:i]


def test_cli_predict_on_onnx_starts_no_tensorflow(exported, expected):
    # As the `keras-seq` command: TensorFlow made unimportable, the ONNX answers still come.
    code = (
        "import sys, runpy\n"
        "sys.modules['tensorflow'] = None\n"
        "sys.argv = ['keras-seq', 'predict', sys.argv[1], *sys.argv[2:]]\n"
        "from keras_seq.cli import main\nsys.exit(main())\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(exported), *TEXTS], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    _close([json.loads(line) for line in result.stdout.strip().splitlines()], expected)


def test_tf_serving_rest_api_as_its_documentation_gives_it(server, exported):
    """A client written from TF Serving's REST API page: status, metadata, versions, labels, rows
    and columns; the status codes and shapes TF Serving gives."""
    import urllib.error
    import urllib.request

    root = f"http://127.0.0.1:{server}/v1/models"

    def call(path: str, body: dict | None = None) -> tuple[int, dict]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(root + path, data=data, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    available = [{"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]
    for path in ("/reviews", "/reviews/versions/1", "/reviews/labels/stable"):
        code, body = call(path)
        assert code == 200 and body["model_version_status"] == available, path
    code, body = call("/reviews/versions/9")
    assert code == 404 and "version 9" in body["error"]
    code, body = call("/reviews/metadata")
    assert code == 200 and body["model_spec"] == {"name": "reviews", "signature_name": "", "version": "1"}
    signatures = body["metadata"]["signature_def"]["signature_def"]
    recorded = json.loads((exported / "export.json").read_text())["signatures"]
    assert set(signatures) == set(recorded)  # every signature of the SavedModel
    default = signatures["serving_default"]
    assert default["method_name"] == "tensorflow/serving/predict" and default["inputs"]["text"]["dtype"] == "DT_STRING"
    assert set(default["inputs"]) == set(recorded["serving_default"]) and {"label", "probabilities"} <= set(
        default["outputs"]
    )
    texts = ["a good film , not bad at all", "bad"]
    code, rows = call("/reviews/versions/1:predict", {"instances": texts})
    assert code == 200 and len(rows["predictions"]) == 2 and {"label", "probabilities"} <= set(rows["predictions"][0])
    code, columns = call("/reviews/labels/stable:predict", {"inputs": {"text": texts}})
    assert code == 200 and columns["outputs"]["label"] == [row["label"] for row in rows["predictions"]]
    code, body = call("/reviews/versions/2:predict", {"instances": texts})
    assert code == 404 and body["error"] == "Servable not found for request: Specific(reviews, 2)"
    code, body = call("/reviews/labels/canary:predict", {"instances": texts})
    assert code == 400 and body["error"] == "Unrecognized servable version label: canary"
    code, body = call("/reviews/versions/x:predict", {"instances": texts})
    assert code == 400
    code, body = call("/nope:predict", {"instances": texts})
    assert code == 404 and body["error"] == "Servable not found for request: Latest(nope)"
    assert call("/nope")[0] == 404
    # KServe's V2 addresses versions too
    v2 = {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [2], "data": texts}]}
    root = f"http://127.0.0.1:{server}/v2/models"
    code, body = call("/reviews/versions/1/infer", v2)
    assert code == 200 and body["model_name"] == "reviews" and len(body["outputs"][0]["data"]) == 2
    assert call("/reviews/versions/5/infer", v2)[0] == 404


def test_an_export_from_before_version_folders_is_served_as_one_version(exported, tmp_path):
    import shutil

    from keras_seq.serving.model_config import VersionPolicy
    from keras_seq.serving.predictor import OnnxPredictor
    from keras_seq.serving.versions import ModelVersions, entry_for
    from tests.helpers import fresh_copy

    legacy = fresh_copy(exported, tmp_path / "legacy")
    for onnx in legacy.glob("savedmodel/*/*/onnx"):
        shutil.rmtree(onnx)
    entry = entry_for(legacy, None, VersionPolicy(), {})
    assert entry.base_path == legacy and entry.name == "reviews"
    model = ModelVersions(entry, OnnxPredictor)
    model.poll()
    with model.serving() as (version, predictor):
        assert version == 1 and predictor.predict(TEXTS) == OnnxPredictor(exported).predict(TEXTS)


def test_serving_a_damaged_export_fails_in_one_line_naming_the_file(exported, tmp_path):
    from keras_seq.serving.server import serve
    from tests.helpers import fresh_copy

    damaged = fresh_copy(exported, tmp_path / "damaged")
    vocab = next(damaged.glob("savedmodel/reviews/*/onnx/vocab.txt"))
    vocab.write_text("changed\n", encoding="utf-8")
    with pytest.raises(
        ValueError, match=r"no version of .* could be loaded \(ContractError: .*vocab\.txt: does not match"
    ):
        serve(damaged, port=free_port(), poll_seconds=0)
