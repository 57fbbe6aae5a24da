"""`keras-seq serve EXPORT_DIR`: a KServe model server around `OnnxPredictor`.

KServe's Python model server (FastAPI + uvicorn) supplies the protocol: V1 --
TF Serving's REST form, ``POST /v1/models/NAME:predict`` with ``instances`` (or
``inputs``) -- and V2 (``/v2/models/NAME/infer``), health and readiness
(``/v1/models/NAME``, ``/v2/health/ready``) and Prometheus ``/metrics``. This
module adds only the model: request validation and the mapping between texts
and answers. V1 replies carry the SavedModel's output names (``predictions``
rows such as ``{"probabilities", "label", "label_id", "label_names"}``), so the
same `serving.client.RestClient` talks to this server and to TF Serving.

Needs onnxruntime, numpy and kserve -- not TensorFlow.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
import uuid
from pathlib import Path

import kserve
from kserve.errors import InvalidInput, ModelNotFound, ServerNotReady

from keras_seq.serving.batching import BatchingOptions, QueueFull, RequestBatcher
from keras_seq.serving.demo_page import DemoPage, demo_files
from keras_seq.serving.guard import (
    BODY_TIMEOUT,
    HEAD_TIMEOUT,
    MAX_BODY_BYTES,
    RequestGuard,
    head_timeout_protocol,
    quiet_client_errors,
)
from keras_seq.serving.lifecycle import LABEL_HEADER, VERSION_HEADER, Drain, TFServingRoutes, draining_server_class
from keras_seq.serving.model_config import ModelEntry, VersionPolicy, read_model_config
from keras_seq.serving.predictor import OnnxPredictor
from keras_seq.serving.signature_outputs import to_signature_outputs
from keras_seq.serving.versions import ModelVersions, VersionManager, VersionNotFound, entry_for

MAX_TEXTS = 256  # per request, V1 and V2
DRAIN_GRACE = 2.0  # seconds after SIGTERM that new connections are still taken (readiness is false)
DRAIN_SECONDS = 30.0  # seconds in-flight requests get to finish after that
V2_INPUT, V2_OUTPUT = "text", "answer"


def _text(item, where: str):
    if isinstance(item, str):
        return item
    if isinstance(item, dict) and set(item) == {"b64"} and isinstance(item["b64"], str):
        try:
            return base64.b64decode(item["b64"], validate=True)
        except (binascii.Error, ValueError):
            raise InvalidInput(f"{where}: 'b64' is not valid base64") from None
    if isinstance(item, dict) and set(item) == {"text"}:
        return _text(item["text"], where + ".text")
    raise InvalidInput(f'{where}: expected a string, {{"b64": ...}} or {{"text": ...}}; got {type(item).__name__}')


def texts_from_v1(payload, max_texts: int = MAX_TEXTS) -> tuple[list, str, str]:
    """(texts, signature name, form) from a V1 / TF Serving REST request body."""
    if isinstance(payload, (bytes, str)):  # sent without a JSON content type
        try:
            payload = json.loads(payload)
        except (ValueError, RecursionError) as error:  # RequestGuard parses bodies first; this is for direct calls
            raise InvalidInput(f"the request body is not valid JSON ({error})") from None
    if not isinstance(payload, dict):
        raise InvalidInput("the request body must be a JSON object")
    signature = payload.get("signature_name", "serving_default")
    if "instances" in payload:
        items, form = payload["instances"], "instances"
    elif "inputs" in payload:
        items, form = payload["inputs"], "inputs"
        if isinstance(items, dict):
            if set(items) != {"text"}:
                raise InvalidInput(f"'inputs' must name the one input 'text'; got {sorted(items)}")
            items = items["text"]
    else:
        raise InvalidInput("the request needs 'instances' (or 'inputs'): a list of texts")
    if not isinstance(items, list):
        raise InvalidInput(f"'{form}' must be a list of texts; got {type(items).__name__}")
    if not items:
        raise InvalidInput(f"'{form}' is empty")
    if len(items) > max_texts:
        raise InvalidInput(f"'{form}' holds {len(items)} texts; the limit is {max_texts} per request")
    return [_text(item, f"{form}[{i}]") for i, item in enumerate(items)], signature, form


def texts_from_v2(request: kserve.InferRequest, max_texts: int = MAX_TEXTS) -> list:
    """The texts of a V2 request, checked against the model's metadata: one input named
    'text', datatype BYTES, shape [n] with n = the number of strings, 1 <= n <= max_texts."""
    if len(request.inputs) != 1:
        raise InvalidInput(f"send one input, '{V2_INPUT}' (BYTES, shape [n]); got {len(request.inputs)}")
    tensor = request.inputs[0]
    if tensor.name != V2_INPUT:
        raise InvalidInput(f"the input must be named '{V2_INPUT}'; got {str(tensor.name)[:60]!r}")
    if tensor.datatype != "BYTES":
        raise InvalidInput(f"input '{V2_INPUT}' must have datatype BYTES; got {str(tensor.datatype)[:20]!r}")
    data = tensor.data
    if not isinstance(data, list) or not all(isinstance(t, (str, bytes)) for t in data):
        raise InvalidInput(f"input '{V2_INPUT}' must hold a flat list of strings")
    if list(tensor.shape) != [len(data)]:
        raise InvalidInput(
            f"input '{V2_INPUT}' must have shape [{len(data)}] (one string each); got {list(tensor.shape)[:8]}"
        )
    if not data:
        raise InvalidInput(f"input '{V2_INPUT}' is empty")
    if len(data) > max_texts:
        raise InvalidInput(f"input '{V2_INPUT}' holds {len(data)} texts; the limit is {max_texts} per request")
    return [t.decode("utf-8", "replace") if isinstance(t, bytes) else t for t in data]


class BatchQueueFull(ServerNotReady):
    """HTTP 503 (kserve's handler for ServerNotReady), with the batcher's own words."""

    def __init__(self, detail: str) -> None:
        super().__init__()
        self.error_msg = detail


class TextModel(kserve.Model):
    """One model's served versions (`ModelVersions`), answering raw texts; a request answers
    from the latest available version unless `TFServingRoutes` names a version or label. With a
    `batcher`, concurrent requests to one version and signature are answered by one predictor call."""

    def __init__(self, versions: ModelVersions, max_texts: int = MAX_TEXTS, batcher: RequestBatcher | None = None):
        super().__init__(versions.name)
        self.versions, self.max_texts, self.batcher = versions, max_texts, batcher

    def load(self) -> bool:
        self.ready = self.versions.ready
        return self.ready

    async def healthy(self) -> bool:
        return self.versions.ready

    @staticmethod
    def _answerer(predictor, signature: str):
        """The predictor's function that answers a list of texts for `signature`."""
        if signature == "generate":
            if not predictor.task.generates:
                raise InvalidInput("signature 'generate' exists for language models only")
            return predictor.generate
        if signature != "serving_default":
            raise InvalidInput(f"unknown signature_name {signature!r}")
        return predictor.predict

    @contextlib.contextmanager
    def _serving(self, headers: dict | None):
        """The predictor of the version the headers name (the latest without), held for the block."""
        headers = headers or {}
        version = headers.get(VERSION_HEADER.decode())
        try:
            with self.versions.serving(int(version) if version else None, headers.get(LABEL_HEADER.decode())) as (
                _,
                predictor,
            ):
                yield predictor
        except VersionNotFound as error:
            raise ModelNotFound(str(error)) from None

    def _answer_version(self, headers: dict | None, texts: list, signature: str) -> tuple[object, list[dict]]:
        with self._serving(headers) as predictor:
            return predictor, self._answerer(predictor, signature)(texts)

    async def _answers(self, headers: dict | None, texts: list, signature: str) -> tuple[object, list[dict]]:
        if self.batcher is None:  # one predictor call per request, on the event loop's thread pool
            return await asyncio.get_running_loop().run_in_executor(
                None, self._answer_version, headers, texts, signature
            )
        with self._serving(headers) as predictor:  # the version stays loaded while the request waits
            answer = self._answerer(predictor, signature)
            try:
                future = self.batcher.submit((id(predictor), signature), answer, texts)
            except QueueFull as error:
                raise BatchQueueFull(str(error)) from None
            return predictor, await asyncio.wrap_future(future)

    def get_input_types(self) -> list[dict]:
        """V2 metadata (``GET /v2/models/NAME``): what `texts_from_v2` accepts."""
        return [{"name": V2_INPUT, "datatype": "BYTES", "shape": [-1]}]

    def get_output_types(self) -> list[dict]:
        return [{"name": V2_OUTPUT, "datatype": "BYTES", "shape": [-1]}]

    async def predict(self, payload, headers=None, response_headers=None):
        if isinstance(payload, kserve.InferRequest):  # V2: one BYTES input of texts
            texts = texts_from_v2(payload, self.max_texts)
            _, answers = await self._answers(headers, texts, "serving_default")
            output = kserve.InferOutput(
                name=V2_OUTPUT, shape=[len(answers)], datatype="BYTES", data=[json.dumps(a) for a in answers]
            )
            return kserve.InferResponse(
                model_name=self.name, infer_outputs=[output], response_id=payload.id or str(uuid.uuid4())
            )
        texts, signature, form = texts_from_v1(payload, self.max_texts)
        predictor, answers = await self._answers(headers, texts, signature)
        rows = [to_signature_outputs(predictor.task.name, a, predictor.labels) for a in answers]
        if form == "inputs":  # columnar, as TF Serving answers the "inputs" form
            return {"outputs": {key: [row[key] for row in rows] for key in rows[0]}}
        return {"predictions": rows}


class _WithoutRequestTiming:
    """kserve's app without its TimingMiddleware: per request that middleware reads the thread's
    CPU clock and logs two ``kserve.trace`` lines, on the event loop every request goes through
    (a profile of the server under benchmarks/bench_server.py's load showed it as the largest
    cost there). The Prometheus metrics at ``/metrics`` do not come from it.
    kserve adds it after uvicorn's config is built, so it is taken out at the first ASGI call
    (lifespan startup), before Starlette builds its middleware stack."""

    def __init__(self, app) -> None:
        self.app, self._checked = app, False

    async def __call__(self, scope, receive, send):
        if not self._checked:
            from timing_asgi import TimingMiddleware

            self._checked = True
            if hasattr(self.app, "user_middleware"):
                self.app.user_middleware = [m for m in self.app.user_middleware if m.cls is not TimingMiddleware]
                self.app.middleware_stack = None  # built again, without it, now
        await self.app(scope, receive, send)


def _configure_uvicorn(
    host: str, max_body_bytes: int, body_timeout: float, head_timeout: float, wrap, server_class
) -> None:
    """KServe builds uvicorn's Config itself, with host 0.0.0.0 hard-coded: bind where we
    are told (loopback by default), put `RequestGuard` and `wrap` (the lifecycle routes) in
    front of its app, give the HTTP protocol a deadline for request heads, and run uvicorn
    through `server_class` (the drain on SIGTERM)."""
    import types

    import uvicorn
    from kserve.protocol.rest import server as rest

    config = uvicorn.Config
    protocol = type("HeadTimeout", (head_timeout_protocol(),), {"head_timeout": head_timeout})

    def guarded_config(app, **kwargs):
        if isinstance(app, str):  # "kserve.model_server:app"
            from uvicorn.importer import import_from_string

            app = import_from_string(app)
        guarded = RequestGuard(wrap(_WithoutRequestTiming(app)), max_body_bytes, body_timeout)
        return config(guarded, **{**kwargs, "host": host, "http": protocol})

    rest.uvicorn = types.SimpleNamespace(**{**vars(uvicorn), "Config": guarded_config})
    rest._RefreshingServer = server_class(rest._RefreshingServer)


def serve(
    export_dirs: str | Path | list,
    port: int = 8080,
    host: str = "127.0.0.1",
    name: str | None = None,
    max_texts: int = MAX_TEXTS,
    max_body_bytes: int = MAX_BODY_BYTES,
    body_timeout: float = BODY_TIMEOUT,
    head_timeout: float = HEAD_TIMEOUT,
    int8: bool = False,
    *,
    model_config_file: str | Path | None = None,
    versions: str = "latest:1",
    labels: dict[str, int] | None = None,
    poll_seconds: float = 1.0,
    drain_grace: float = DRAIN_GRACE,
    drain_seconds: float = DRAIN_SECONDS,
    demo_page: bool = False,
    batching: BatchingOptions | None = None,
    access_log: bool = False,
    intra_op_threads: int = 1,
) -> None:
    """Serves exports (or base paths of numbered versions; or the models of TF Serving's
    `model_config_file`) from ONNX Runtime until SIGTERM: V1 with TF Serving's version routes,
    V2, health, metrics. `versions`: the version policy (``latest:N``, ``all``, ``specific:1,2``);
    `labels`: {label: version}; `poll_seconds`: how often base paths are looked at again (0: never);
    `int8`: the exports' int8 graphs; `demo_page`: also the JavaScript demo page at ``/``
    (`keras_seq.serving.demo_page`); `batching`: answer concurrent requests in batches
    (`keras_seq.serving.batching`; None: each request on its own); `access_log`: one line per
    request (uvicorn's access log; off by default, as in TF Serving); `intra_op_threads`: ONNX
    Runtime's threads per call (0: its default, every core). One, by default: concurrent requests
    (or batches) run side by side instead, which used the cores better under load
    (benchmarks/bench_server.py). SIGTERM drains
    (`keras_seq.serving.lifecycle`)."""
    page_files = demo_files() if demo_page else None  # a missing js/ folder fails before anything loads
    entries = _entries(export_dirs, name, model_config_file, versions, labels or {})
    manager = VersionManager(
        entries,
        lambda directory: OnnxPredictor(directory, threads=intra_op_threads or None, int8=int8),
        poll_seconds,
        Path(model_config_file) if model_config_file else None,
    )
    manager.start()
    for model in manager.models.values():
        if not model.ready:
            manager.stop()
            reasons = [s["status"]["error_message"] for s in model.status() if s["status"]["error_message"]]
            raise ValueError(
                f"model {model.name!r}: no version of {model.entry.base_path} could be loaded"
                + (f" ({reasons[0]})" if reasons else " (no numbered version folder with an onnx/ half)")
            )
    drain = Drain()
    _configure_uvicorn(
        host,
        max_body_bytes,
        body_timeout,
        head_timeout,
        lambda app: _with_demo_page(TFServingRoutes(app, manager, drain), manager, page_files),
        lambda base: draining_server_class(base, drain, drain_grace),
    )
    quiet_client_errors()
    logging.getLogger("uvicorn.access").disabled = not access_log
    batcher = RequestBatcher(batching) if batching is not None else None
    models = [TextModel(model_versions, max_texts, batcher) for model_versions in manager.models.values()]
    for model in models:
        model.load()
    try:
        kserve.ModelServer(
            http_port=port, enable_grpc=False, workers=1, grace_period=drain_seconds, enable_latency_logging=False
        ).start(models)
    finally:
        if batcher is not None:
            batcher.stop()
        manager.stop()


def _with_demo_page(app, manager: VersionManager, files: dict | None):
    if files is None:
        return app

    def onnx_dir(name: str, version: int | None):
        model = manager.models.get(name)
        if model is None:
            return None
        try:
            with model.serving(version=version) as (number, predictor):
                return number, predictor.directory
        except VersionNotFound:
            return None

    return DemoPage(app, files, next(iter(manager.models)), onnx_dir)


def _entries(export_dirs, name, model_config_file, versions: str, labels: dict) -> list[ModelEntry]:
    if model_config_file:
        if export_dirs:
            raise ValueError("give export directories or --model-config-file, not both")
        return read_model_config(model_config_file)
    paths = [export_dirs] if isinstance(export_dirs, (str, Path)) else list(export_dirs or [])
    if not paths:
        raise ValueError("give one or more export directories (or base paths), or --model-config-file")
    if name and len(paths) > 1:
        raise ValueError("--name names one model; serve several under their own names")
    policy = VersionPolicy.parse(versions)
    entries = [entry_for(path, name, policy, labels) for path in paths]
    names = [e.name for e in entries]
    if len(set(names)) != len(names):
        raise ValueError(f"model names must differ; got {names}")
    return entries
