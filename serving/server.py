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
import json
import uuid
from pathlib import Path

import kserve
from kserve.errors import InvalidInput

from keras_seq.contracts.export_dir import ExportDirectory
from keras_seq.serving.guard import (
    BODY_TIMEOUT,
    HEAD_TIMEOUT,
    MAX_BODY_BYTES,
    HeadTimeoutProtocol,
    RequestGuard,
    quiet_client_errors,
)
from keras_seq.serving.predictor import OnnxPredictor
from keras_seq.serving.signature_outputs import to_signature_outputs

MAX_TEXTS = 256  # per request, V1 and V2
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


class TextModel(kserve.Model):
    """One exported model (its ONNX artifact), answering raw texts."""

    def __init__(
        self, export_dir: str | Path, name: str | None = None, max_texts: int = MAX_TEXTS, int8: bool = False
    ) -> None:
        export_dir = Path(export_dir)
        info = ExportDirectory(export_dir).info()
        super().__init__(name or info["name"])
        self.export_dir, self.info, self.max_texts, self.int8 = export_dir, info, max_texts, int8
        self.predictor: OnnxPredictor | None = None

    def load(self) -> bool:
        self.predictor = OnnxPredictor(self.export_dir, int8=self.int8)
        self.ready = True
        return self.ready

    def _answer(self, texts: list, signature: str) -> list[dict]:
        if signature == "generate":
            if not self.predictor.task.generates:
                raise InvalidInput("signature 'generate' exists for language models only")
            return self.predictor.generate(texts)
        if signature != "serving_default":
            raise InvalidInput(f"unknown signature_name {signature!r}")
        return self.predictor.predict(texts)

    def get_input_types(self) -> list[dict]:
        """V2 metadata (``GET /v2/models/NAME``): what `texts_from_v2` accepts."""
        return [{"name": V2_INPUT, "datatype": "BYTES", "shape": [-1]}]

    def get_output_types(self) -> list[dict]:
        return [{"name": V2_OUTPUT, "datatype": "BYTES", "shape": [-1]}]

    async def predict(self, payload, headers=None, response_headers=None):
        if isinstance(payload, kserve.InferRequest):  # V2: one BYTES input of texts
            texts = texts_from_v2(payload, self.max_texts)
            answers = await asyncio.get_running_loop().run_in_executor(None, self._answer, texts, "serving_default")
            output = kserve.InferOutput(
                name=V2_OUTPUT, shape=[len(answers)], datatype="BYTES", data=[json.dumps(a) for a in answers]
            )
            return kserve.InferResponse(
                model_name=self.name, infer_outputs=[output], response_id=payload.id or str(uuid.uuid4())
            )
        texts, signature, form = texts_from_v1(payload, self.max_texts)
        answers = await asyncio.get_running_loop().run_in_executor(None, self._answer, texts, signature)
        labels = self.predictor.labels
        rows = [to_signature_outputs(self.predictor.task.name, a, labels) for a in answers]
        if form == "inputs":  # columnar, as TF Serving answers the "inputs" form
            return {"outputs": {key: [row[key] for row in rows] for key in rows[0]}}
        return {"predictions": rows}


def _configure_uvicorn(host: str, max_body_bytes: int, body_timeout: float, head_timeout: float) -> None:
    """KServe builds uvicorn's Config itself, with host 0.0.0.0 hard-coded: bind where we
    are told (loopback by default), put `RequestGuard` in front of its app and give
    the HTTP protocol a deadline for request heads."""
    import types

    import uvicorn
    from kserve.protocol.rest import server as rest

    config = uvicorn.Config
    protocol = type("HeadTimeout", (HeadTimeoutProtocol,), {"head_timeout": head_timeout})

    def guarded_config(app, **kwargs):
        if isinstance(app, str):  # "kserve.model_server:app"
            from uvicorn.importer import import_from_string

            app = import_from_string(app)
        return config(RequestGuard(app, max_body_bytes, body_timeout), **{**kwargs, "host": host, "http": protocol})

    rest.uvicorn = types.SimpleNamespace(**{**vars(uvicorn), "Config": guarded_config})


def serve(
    export_dir: str | Path,
    port: int = 8080,
    host: str = "127.0.0.1",
    name: str | None = None,
    max_texts: int = MAX_TEXTS,
    max_body_bytes: int = MAX_BODY_BYTES,
    body_timeout: float = BODY_TIMEOUT,
    head_timeout: float = HEAD_TIMEOUT,
    int8: bool = False,
) -> None:
    """Serves the export's ONNX model (`int8`: its int8 graphs) until interrupted (V1, V2, health, metrics)."""
    model = TextModel(export_dir, name, max_texts, int8)
    model.load()
    _configure_uvicorn(host, max_body_bytes, body_timeout, head_timeout)
    quiet_client_errors()
    kserve.ModelServer(http_port=port, enable_grpc=False, workers=1).start([model])
