"""The demo page: the JavaScript package's page (``js/demo/``) that answers in the browser, with
onnxruntime-web (WebAssembly) and the package's predictor -- the Python `OnnxPredictor`'s answers,
computed on the reader's machine.

Two ways to host it:

* ``keras-seq serve EXPORT --demo-page``: `DemoPage` (ASGI, in front of the REST API) serves the
  page at ``/`` and each loaded version's ``onnx/`` files at ``/demo-models/NAME/N/``;
* ``keras-seq kit EXPORT --demo-page``: `write_demo_site` writes it as a static folder (the page,
  the package, onnxruntime-web's files and the model) to host anywhere.

The page's files come from the ``js/`` folder of a keras-seq checkout (or ``$KERAS_SEQ_JS``) with
its npm dependencies installed (``make js-install``): the wheel does not carry them.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path

from keras_seq.contracts.export_dir import find_onnx_dir

#: onnxruntime-web's files the page loads (its WebAssembly build), from js/node_modules/onnxruntime-web/dist
ORT_WEB_FILES = ("ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")
MODELS_PATH = "demo-models"
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".wasm": "application/wasm",
    ".json": "application/json",
    ".txt": "text/plain; charset=utf-8",
}
_MODEL_FILE = re.compile(rf"^/{MODELS_PATH}/(?P<name>[^/]+)/(?P<version>\d+)/(?P<file>[^/]+)$")


def js_dir() -> Path:
    """The JavaScript package: $KERAS_SEQ_JS, or the ``js/`` folder of this checkout."""
    configured = os.environ.get("KERAS_SEQ_JS")
    return Path(configured) if configured else Path(__file__).resolve().parents[1] / "js"


def demo_files(package: Path | None = None) -> dict[str, Path]:
    """The page's files by their path under the site's root: index.html, demo.js, demo.css,
    src/*.js (the package), ort/* (onnxruntime-web). One clear line when something is missing."""
    package = Path(package) if package else js_dir()
    demo = package / "demo"
    if not (demo / "index.html").is_file():
        raise FileNotFoundError(
            f"{package}: not keras-seq's JavaScript package (no demo/index.html); the demo page needs a "
            "checkout's js/ folder, or set KERAS_SEQ_JS"
        )
    files = {p.name: p for p in sorted(demo.iterdir()) if p.is_file()}
    files.update({p.relative_to(package).as_posix(): p for p in sorted((package / "src").rglob("*.js"))})
    dist = package / "node_modules" / "onnxruntime-web" / "dist"
    missing = [name for name in ORT_WEB_FILES if not (dist / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{dist}: onnxruntime-web's {missing[0]} is missing; install the package's npm dependencies "
            "(make js-install, or npm ci --ignore-scripts in js/)"
        )
    files.update({f"ort/{name}": dist / name for name in ORT_WEB_FILES})
    return files


def write_demo_site(export_dir: str | Path, out: str | Path, package: Path | None = None) -> Path:
    """The page as a static folder: OUT/index.html and its files, the export's ONNX half in
    OUT/model/ (the page's default). Serve OUT with any static file server."""
    out = Path(out)
    onnx_dir = find_onnx_dir(export_dir)
    for relative, source in demo_files(package).items():
        (out / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, out / relative)
    model = out / "model"
    model.mkdir(parents=True, exist_ok=True)
    for path in sorted(onnx_dir.iterdir()):
        if path.is_file():
            shutil.copyfile(path, model / path.name)
    return out


def serve_static(folder: str | Path, port: int = 0, host: str = "127.0.0.1"):
    """`folder` (the site `write_demo_site` wrote) on a static file server in a background thread,
    as any static host serves it: returns the started ``ThreadingHTTPServer`` (its
    ``server_address`` has the port; ``shutdown()`` stops it)."""
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    class Handler(SimpleHTTPRequestHandler):
        extensions_map = {
            **SimpleHTTPRequestHandler.extensions_map,
            ".mjs": "text/javascript",
            ".wasm": "application/wasm",
        }

        def log_message(self, format, *args):  # noqa: A002 - the base class' name
            pass

    server = ThreadingHTTPServer((host, port), functools.partial(Handler, directory=str(folder)))
    threading.Thread(target=server.serve_forever, name="keras-seq-static", daemon=True).start()
    return server


async def _send_file(send, path: Path, head: bool = False) -> None:
    body = path.read_bytes()
    headers = [
        (b"content-type", CONTENT_TYPES.get(path.suffix, "application/octet-stream").encode()),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-cache"),
    ]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head else body})


async def _send_status(send, status: int, message: str, location: str | None = None) -> None:
    body = message.encode()
    headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())]
    if location:
        headers.append((b"location", location.encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class DemoPage:
    """ASGI middleware: GET ``/`` redirects to the page with the latest version of `model` to
    answer from; the page's files and ``/demo-models/NAME/N/FILE`` (the version's ``onnx/`` files,
    looked up with `onnx_dir(name, version)`, None when it is not loaded) are served; every other
    request goes on to `app`."""

    def __init__(
        self, app, files: dict[str, Path], model: str, onnx_dir: Callable[[str, int | None], tuple[int, Path] | None]
    ) -> None:
        self.app, self.files, self.model, self.onnx_dir = app, files, model, onnx_dir

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD"):
            return await self.app(scope, receive, send)
        path, head = scope["path"], scope["method"] == "HEAD"
        if path == "/":
            found = self.onnx_dir(self.model, None)
            if found is None:
                return await _send_status(send, 503, f"model {self.model!r} has no version loaded yet")
            return await _send_status(
                send, 302, "the demo page", location=f"/index.html?model=/{MODELS_PATH}/{self.model}/{found[0]}/"
            )
        if path.lstrip("/") in self.files:
            return await _send_file(send, self.files[path.lstrip("/")], head)
        match = _MODEL_FILE.match(path)
        if match:
            found = self.onnx_dir(match["name"], int(match["version"]))
            if found is None:
                return await _send_status(
                    send, 404, f"model {match['name']!r} has no version {match['version']} loaded"
                )
            file = found[1] / match["file"]
            if not file.is_file() or file.parent != found[1]:
                return await _send_status(send, 404, f"{match['file']}: no such file in that version's onnx/ folder")
            return await _send_file(send, file, head)
        return await self.app(scope, receive, send)
