"""Clients for a deployed model: one API, ``predict(texts) -> answers``.

* `RestClient` speaks TF Serving's REST API (``POST /v1/models/NAME[/versions/N]:predict``,
  row ``instances`` or columnar ``inputs`` form, errors as ``{"error": ...}``) -- to TF Serving
  itself or to `keras-seq serve` (`serving/server.py`), which speaks the same protocol. Standard
  library only.
* `GrpcClient` calls TF Serving's ``PredictionService/Predict`` over gRPC with the request and
  response protos of ``tensorflow-serving-api`` (whose protos import the tensorflow package's).

Both return the answers of `serving.answers` (the same shapes as ``keras-seq predict``).
Connection failures and timeouts are retried (predict is idempotent) and then raised as
`ServingError` with a message that names the server; server-side errors carry the server's text.
"""

from __future__ import annotations

import base64
import json
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Sequence

import numpy as np

from keras_seq.contracts.tokenizer import valid_text
from keras_seq.serving.signature_outputs import from_signature_outputs, rows_of
from keras_seq.serving.tasks import task_for_outputs


class ServingError(RuntimeError):
    """A request failed: `status` is the HTTP status (None: no answer at all)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def _retrying(call, retries: int, backoff: float, describe: str, transient: tuple):
    for attempt in range(retries + 1):
        try:
            return call()
        except transient as error:
            if attempt == retries:
                raise ServingError(f"{describe}: {error} (after {retries + 1} attempts)") from None
            time.sleep(backoff * 2**attempt)


def _rest_text(text: str | bytes):
    # JSON cannot carry invalid UTF-8: bytes go as TF Serving's {"b64": ...}.
    if isinstance(text, bytes):
        return {"b64": base64.b64encode(text).decode("ascii")}
    if not isinstance(text, str):
        raise TypeError(f"expected text (str or bytes), got {type(text).__name__}")
    return valid_text(text)  # lone surrogates -> U+FFFD, as the tokenizer does (rule 1)


class RestClient:
    def __init__(
        self,
        url: str,
        model: str,
        *,
        version: int | None = None,
        timeout: float = 30.0,
        retries: int = 2,
        backoff: float = 0.2,
        form: str = "instances",
    ) -> None:
        if form not in ("instances", "inputs"):
            raise ValueError(f"`form` must be 'instances' or 'inputs'; received {form!r}")
        self.base = url.rstrip("/") + f"/v1/models/{model}" + (f"/versions/{version}" if version else "")
        self.timeout, self.retries, self.backoff, self.form = timeout, retries, backoff, form

    def _request(self, path: str, body: dict | None = None) -> dict:
        data = None if body is None else json.dumps(body).encode("utf-8")
        request = urllib.request.Request(
            self.base + path, data=data, method="POST" if data else "GET", headers={"Content-Type": "application/json"}
        )

        def call():
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    return json.loads(response.read().decode("utf-8"))
            except urllib.error.HTTPError as error:  # the server answered: not retried
                text = error.read().decode("utf-8", "replace")
                try:
                    message = json.loads(text).get("error", text)
                except (json.JSONDecodeError, AttributeError):
                    message = text
                raise ServingError(f"{self.base + path}: HTTP {error.code}: {message}", error.code) from None
            except urllib.error.URLError as error:
                reason = error.reason
                if isinstance(reason, ConnectionRefusedError):
                    raise ConnectionRefusedError("connection refused (is the server running?)") from None
                if isinstance(reason, (socket.timeout, TimeoutError)):
                    raise TimeoutError(f"no answer within {self.timeout} s") from None
                raise ConnectionError(str(reason)) from None
            except TimeoutError:  # the answer did not arrive in time
                raise TimeoutError(f"no answer within {self.timeout} s") from None

        return _retrying(
            call, self.retries, self.backoff, self.base + path, (ConnectionError, TimeoutError, socket.timeout)
        )

    def status(self) -> dict:
        return self._request("")

    def predict(self, texts: Sequence[str | bytes], signature: str = "serving_default") -> list[dict]:
        if isinstance(texts, (str, bytes)):
            raise TypeError("`texts` must be a list of strings, not one string")
        items = [_rest_text(t) for t in texts]
        body: dict[str, object] = {"signature_name": signature}
        body.update({"instances": items} if self.form == "instances" else {"inputs": {"text": items}})
        reply = self._request(":predict", body)
        if "predictions" in reply:
            rows = reply["predictions"]
        elif "outputs" in reply:
            outputs = reply["outputs"]
            rows = rows_of(outputs) if isinstance(outputs, dict) else outputs
        else:
            raise ServingError(f"{self.base}: the reply has neither 'predictions' nor 'outputs': {str(reply)[:200]}")
        if signature == "generate":
            rows = [r if isinstance(r, dict) else {"continuation": r} for r in rows]
        return [from_signature_outputs(task_for_outputs(r).name, r, signature) for r in rows]


# -- gRPC ------------------------------------------------------------------------
def _tensor_to_numpy(proto) -> np.ndarray:
    """A TensorProto as NumPy without TensorFlow ops (the dtypes our signatures use)."""
    from tensorflow.core.framework import types_pb2

    shape = [d.size for d in proto.tensor_shape.dim]
    if proto.dtype == types_pb2.DT_STRING:
        return np.array(list(proto.string_val), dtype=object).reshape(shape)
    dtype = {types_pb2.DT_FLOAT: np.float32, types_pb2.DT_INT64: np.int64, types_pb2.DT_INT32: np.int32}[proto.dtype]
    if proto.tensor_content:
        return np.frombuffer(proto.tensor_content, dtype=dtype).reshape(shape)
    values = {np.float32: proto.float_val, np.int64: proto.int64_val, np.int32: proto.int_val}[dtype]
    array = np.array(list(values), dtype=dtype)
    size = int(np.prod(shape)) if shape else 1
    return np.broadcast_to(array, (size,)).reshape(shape) if array.size == 1 and size != 1 else array.reshape(shape)


class GrpcClient:
    def __init__(
        self,
        target: str,
        model: str,
        *,
        version: int | None = None,
        timeout: float = 30.0,
        retries: int = 2,
        backoff: float = 0.2,
    ) -> None:
        import grpc
        from tensorflow_serving.apis import prediction_service_pb2_grpc

        self.target, self.model, self.version = target, model, version
        self.timeout, self.retries, self.backoff = timeout, retries, backoff
        self.channel = grpc.insecure_channel(target)
        self.stub = prediction_service_pb2_grpc.PredictionServiceStub(self.channel)

    def build_request(self, texts: Sequence[str | bytes], signature: str = "serving_default"):
        from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2
        from tensorflow_serving.apis import predict_pb2

        if isinstance(texts, (str, bytes)):
            raise TypeError("`texts` must be a list of strings, not one string")
        request = predict_pb2.PredictRequest()
        request.model_spec.name = self.model
        request.model_spec.signature_name = signature
        if self.version:
            request.model_spec.version.value = self.version
        values = [t if isinstance(t, bytes) else t.encode("utf-8", "surrogatepass") for t in texts]
        shape = tensor_shape_pb2.TensorShapeProto(dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=len(values))])
        request.inputs["text"].CopyFrom(
            tensor_pb2.TensorProto(dtype=types_pb2.DT_STRING, tensor_shape=shape, string_val=values)
        )
        return request

    @staticmethod
    def parse_response(response, signature: str = "serving_default") -> list[dict]:
        rows = rows_of({key: _tensor_to_numpy(value) for key, value in response.outputs.items()})
        return [from_signature_outputs(task_for_outputs(r).name, r, signature) for r in rows]

    def predict(self, texts: Sequence[str | bytes], signature: str = "serving_default") -> list[dict]:
        import grpc

        request = self.build_request(texts, signature)

        class _Transient(Exception):
            pass

        def call():
            try:
                return self.stub.Predict(request, timeout=self.timeout)
            except grpc.RpcError as error:
                code = error.code()
                if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                    raise _Transient(f"{code.name}: {error.details()}") from None
                raise ServingError(f"{self.target} ({self.model}): {code.name}: {error.details()}") from None

        response = _retrying(call, self.retries, self.backoff, f"{self.target} ({self.model})", (_Transient,))
        return self.parse_response(response, signature)
