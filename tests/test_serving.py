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
import time
from concurrent import futures

import numpy as np
import pytest

pytest.importorskip("kserve")
pytest.importorskip("tensorflow_serving")

from conftest import free_port, served, train_and_export  # noqa: E402

from keras_seq.pipelines.synthetic import DEMO_SENTENCES  # noqa: E402
from keras_seq.serving.client import GrpcClient, RestClient, ServingError  # noqa: E402
from keras_seq.serving.savedmodel_predictor import SavedModelPredictor, latest_version  # noqa: E402
from keras_seq.serving.tfserving_kit import version_policy, write_kit  # noqa: E402

pytestmark = pytest.mark.slow
TEXTS = [*DEMO_SENTENCES, "", "good \U0001F600 , not bad"]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    return train_and_export(tmp_path_factory.mktemp("serving"))


@pytest.fixture(scope="module")
def expected(exported):
    return SavedModelPredictor(exported).predict(TEXTS)


@pytest.fixture(scope="module")
def server(exported):
    with served(exported) as (port, process):
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


def test_server_answers_bad_requests_with_4xx_and_keeps_serving(server):
    import urllib.request

    url = f"http://127.0.0.1:{server}/v1/models/reviews:predict"
    for body in (b"{not json", b'{"instances": 3}', b'{"foo": []}', b'{"instances": [1, 2]}', b'{"instances": []}',
                 json.dumps({"instances": ["a"] * 300}).encode(), b'{"instances": ["a"], "signature_name": "nope"}'):
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
            RestClient(f"http://127.0.0.1:{silent.getsockname()[1]}", "m", timeout=0.3, retries=1,
                       backoff=0.01).predict(["x"])
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


def _text_format_schema():
    """BatchingParameters and MonitoringConfig as declared in TF Serving's
    session_bundle_config.proto / monitoring_config.proto (tensorflow-serving-api
    does not ship them): text format needs only the names and types."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
    from google.protobuf import wrappers_pb2  # noqa: F401 - registers Int64Value

    f = descriptor_pb2.FileDescriptorProto(name="kit_schema.proto", package="tensorflow.serving", syntax="proto3",
                                           dependency=["google/protobuf/wrappers.proto"])
    F = descriptor_pb2.FieldDescriptorProto
    batching = f.message_type.add(name="BatchingParameters")
    for i, name in enumerate(["max_batch_size", "batch_timeout_micros", "max_enqueued_batches",
                              "num_batch_threads"], 1):
        batching.field.add(name=name, number=i, type=F.TYPE_MESSAGE, type_name=".google.protobuf.Int64Value",
                           label=F.LABEL_OPTIONAL)
    batching.field.add(name="allowed_batch_sizes", number=6, type=F.TYPE_INT64, label=F.LABEL_REPEATED)
    batching.field.add(name="pad_variable_length_inputs", number=7, type=F.TYPE_BOOL, label=F.LABEL_OPTIONAL)
    prometheus = f.message_type.add(name="PrometheusConfig")
    prometheus.field.add(name="enable", number=1, type=F.TYPE_BOOL, label=F.LABEL_OPTIONAL)
    prometheus.field.add(name="path", number=2, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    monitoring = f.message_type.add(name="MonitoringConfig")
    monitoring.field.add(name="prometheus_config", number=1, type=F.TYPE_MESSAGE,
                         type_name=".tensorflow.serving.PrometheusConfig", label=F.LABEL_OPTIONAL)
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(descriptor_pb2.FileDescriptorProto(
        name="google/protobuf/wrappers.proto", package="google.protobuf", syntax="proto3",
        message_type=[descriptor_pb2.DescriptorProto(name="Int64Value", field=[
            F(name="value", number=1, type=F.TYPE_INT64, label=F.LABEL_OPTIONAL)])]).SerializeToString())
    pool.AddSerializedFile(f.SerializeToString())
    return {name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"tensorflow.serving.{name}"))
            for name in ("BatchingParameters", "MonitoringConfig")}


def test_deployment_kit_files_parse_and_point_at_the_export(exported, tmp_path):
    import yaml
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    out = tmp_path / "kit"
    written = write_kit([exported], out, versions="specific:1,2")
    assert {p.name for p in written} == {"models.config", "batching_parameters.txt", "monitoring.config",
                                         "docker-compose.yml", "kserve-reviews.yaml"}
    config = text_format.Parse((out / "models.config").read_text(), model_server_config_pb2.ModelServerConfig())
    entry = config.model_config_list.config[0]
    assert entry.name == "reviews" and entry.base_path == "/models/reviews" and entry.model_platform == "tensorflow"
    assert list(entry.model_version_policy.specific.versions) == [1, 2]
    schema = _text_format_schema()
    batching = text_format.Parse((out / "batching_parameters.txt").read_text(), schema["BatchingParameters"]())
    assert batching.max_batch_size.value == 64 and batching.pad_variable_length_inputs
    monitoring = text_format.Parse((out / "monitoring.config").read_text(), schema["MonitoringConfig"]())
    assert monitoring.prometheus_config.enable
    compose = yaml.safe_load((out / "docker-compose.yml").read_text())
    service = compose["services"]["tfserving"]
    assert service["image"].startswith("tensorflow/serving") and "8501:8501" in service["ports"]
    source, target, _ = service["volumes"][0].split(":")
    assert target == "/models/reviews" and ((out / source) / "1" / "saved_model.pb").exists()
    assert "--model_config_file=/config/models.config" in service["command"]
    manifest = yaml.safe_load((out / "kserve-reviews.yaml").read_text())
    assert manifest["kind"] == "InferenceService" and manifest["apiVersion"] == "serving.kserve.io/v1beta1"
    assert manifest["spec"]["predictor"]["model"]["modelFormat"]["name"] == "tensorflow"
    assert version_policy("latest:3") == "latest { num_versions: 3 }"
    with pytest.raises(ValueError, match="version policy"):
        version_policy("newest")


def test_onnx_serving_path_needs_no_tensorflow(exported, expected):
    # TensorFlow (and keras) made unimportable: the predictor and the server module still work.
    code = ("import sys, json\n"
            "for m in ('tensorflow', 'keras', 'tf_keras'): sys.modules[m] = None\n"
            "from keras_seq.serving.predictor import OnnxPredictor\nimport keras_seq.serving.server\n"
            f"print(json.dumps(OnnxPredictor(sys.argv[1]).predict({TEXTS!r})))\n")
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
    code = ("import sys, runpy\n"
            "sys.modules['tensorflow'] = None\n"
            "sys.argv = ['keras-seq', 'predict', sys.argv[1], *sys.argv[2:]]\n"
            "from keras_seq.cli import main\nsys.exit(main())\n")
    result = subprocess.run([sys.executable, "-c", code, str(exported), *TEXTS], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    _close([json.loads(line) for line in result.stdout.strip().splitlines()], expected)
