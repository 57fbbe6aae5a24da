"""TF Serving's model-lifecycle routes in front of KServe's app, and the graceful drain.

`TFServingRoutes` (ASGI) answers what KServe's V1 protocol lacks and TF Serving's REST API has:

* ``POST /v1/models/NAME/versions/N:predict`` and ``.../labels/L:predict``: the request goes on
  to KServe's ``/v1/models/NAME:predict`` with the version (or label) in a header that
  `keras_seq.serving.server.TextModel` reads;
* ``GET /v1/models/NAME[/versions/N|/labels/L]``: TF Serving's ``model_version_status``
  (with KServe's ``name`` and ``ready`` beside it, so KServe's V1 clients read it too);
* ``GET /v1/models/NAME[/versions/N]/metadata``: TF Serving's GetModelMetadata answer, the
  SavedModel's signature_def as the export recorded it (``onnx/signature_def.json``);
* ``POST /v2/models/NAME/versions/N/infer``: KServe's V2 route for a version, answered by it.

A model or version the server does not serve is 404 and an unknown label 400, with TF Serving's
messages. While the server
drains (`Drain`), readiness -- ``GET /v1/models/NAME``, ``/v2/health/ready``,
``/v2/models/NAME/ready`` -- answers 503 while predictions go on being answered.

`DrainingServer`, uvicorn's server as KServe runs it, on SIGTERM (Kubernetes' rolling update):
readiness turns false at once; for `grace` seconds new connections are still taken (the
endpoints controller is still removing this pod); then the listening socket closes, idle
connections close, in-flight requests finish within the drain timeout, and the process exits 0.
A second SIGINT forces the exit.
"""

from __future__ import annotations

import json
import logging
import re
import signal

from keras_seq.contracts.export_dir import SIGNATURE_DEF_FILE
from keras_seq.contracts.files import read_json_object
from keras_seq.serving.versions import VersionManager, VersionNotFound

logger = logging.getLogger(__name__)
VERSION_HEADER, LABEL_HEADER = b"x-keras-seq-version", b"x-keras-seq-label"
_ROUTE = re.compile(
    r"^/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>[^/:]+)|/labels/(?P<label>[^/:]+))?"
    r"(?:(?P<verb>:predict|:classify|:regress)|(?P<metadata>/metadata))?$"
)
_V2_VERSION = re.compile(r"^/v2/models/(?P<name>[^/]+)/versions/(?P<version>[^/]+)/infer$")
_READINESS = re.compile(r"^/v2/(?:health/ready|models/[^/]+(?:/versions/[^/]+)?/ready)$")


class Drain:
    """Whether the server is draining (readiness false); set from the signal handler."""

    def __init__(self) -> None:
        self.draining = False


async def _send_json(send, status: int, content: dict) -> None:
    body = json.dumps(content).encode("utf-8")
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class TFServingRoutes:
    """ASGI middleware: the routes above, the rest to KServe's app."""

    def __init__(self, app, manager: VersionManager, drain: Drain) -> None:
        self.app, self.manager, self.drain = app, manager, drain

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        # Only the routes below name a version to `TextModel`: a client's own headers of those names go.
        scope = {**scope, "headers": [h for h in scope["headers"] if h[0] not in (VERSION_HEADER, LABEL_HEADER)]}
        path = scope["path"]
        if self.drain.draining and scope["method"] == "GET" and _READINESS.match(path):
            return await _send_json(send, 503, {"error": "the server is shutting down"})
        v2 = _V2_VERSION.match(path)
        if v2 and v2["name"] in self.manager.models:  # KServe's V2 names a version too: answer from it
            infer = f"/v2/models/{v2['name']}/infer"
            return await self._to_version(scope, receive, send, v2["name"], v2["version"], None, infer)
        match = _ROUTE.match(path)
        if not match:
            return await self.app(scope, receive, send)
        name = match["name"]
        if name not in self.manager.models:  # TF Serving's words for a model it does not serve
            return await _send_json(send, 404, {"error": f"Servable not found for request: Latest({name})"})
        if match["verb"]:
            if match["version"] is None and match["label"] is None:
                return await self.app(scope, receive, send)
            target = f"/v1/models/{name}{match['verb']}"
            return await self._to_version(scope, receive, send, name, match["version"], match["label"], target)
        if scope["method"] != "GET":
            return await _send_json(send, 405, {"error": f"{path} answers GET only"})
        return await self._status(send, name, match["version"], match["label"], bool(match["metadata"]))

    async def _to_version(self, scope, receive, send, name: str, version: str | None, label: str | None, path: str):
        """The request, to KServe's route `path` with the version (or label) in a header for `TextModel`;
        a version or label not served is answered here with TF Serving's status."""
        if version is not None and not version.isdigit():
            return await _send_json(send, 400, {"error": f"version must be a number; got {version[:40]!r}"})
        try:  # (one unloaded between this check and the answer gets KServe's 404)
            with self.manager.models[name].serving(int(version) if version else None, label):
                pass
        except VersionNotFound as error:
            return await _send_json(send, error.status, {"error": str(error)})
        header = (VERSION_HEADER, version.encode()) if version is not None else (LABEL_HEADER, str(label).encode())
        rerouted = {**scope, "path": path, "raw_path": path.encode(), "headers": [*scope["headers"], header]}
        return await self.app(rerouted, receive, send)

    async def _status(self, send, name: str, version: str | None, label: str | None, metadata: bool):
        """``GET /v1/models/NAME[/versions/N|/labels/L][/metadata]``."""
        if version is not None and not version.isdigit():
            return await _send_json(send, 400, {"error": f"version must be a number; got {version[:40]!r}"})
        model, number = self.manager.models[name], int(version) if version is not None else None
        try:
            if label is not None:
                with model.serving(label=label) as (number, _):
                    pass
            if metadata:
                return await _send_json(send, 200, self._metadata(model, number))
            status = model.status(number)
        except VersionNotFound as error:
            return await _send_json(send, error.status, {"error": str(error)})
        ready = model.ready and not self.drain.draining
        body = {"name": model.name, "ready": ready, "model_version_status": status}
        return await _send_json(send, 200 if ready or number is not None else 503, body)

    @staticmethod
    def _metadata(model, version: int | None) -> dict:
        with model.serving(version) as (number, predictor):
            path = predictor.directory / SIGNATURE_DEF_FILE
        if not path.is_file():
            raise VersionNotFound(f"version {number} of {model.name!r} records no signatures (export it again)")
        return {
            "model_spec": {"name": model.name, "signature_name": "", "version": str(number)},
            "metadata": {"signature_def": read_json_object(path, "the SavedModel's signatures")},
        }


def draining_server_class(base, drain: Drain, grace: float):
    """A subclass of KServe's uvicorn server (`base`) that drains on SIGTERM (module docstring)."""

    class DrainingServer(base):
        def handle_exit(self, sig, frame) -> None:
            if sig != signal.SIGTERM or drain.draining:
                return super().handle_exit(sig, frame)
            drain.draining = True
            logger.info("SIGTERM: readiness is false; closing the listener in %g s, then draining", grace)
            loop = getattr(self, "_drain_loop", None)
            if loop is None:
                return super().handle_exit(sig, frame)
            loop.call_soon_threadsafe(loop.call_later, grace, super().handle_exit, sig, frame)

        async def serve(self, sockets=None) -> None:
            import asyncio

            self._drain_loop = asyncio.get_running_loop()
            await super().serve(sockets)

    return DrainingServer
