"""What stands between the network and KServe's model server: bounded requests,
client errors as 4xx JSON, one log line per client error.

KServe (FastAPI + uvicorn) parses and answers requests itself, and some client
mistakes reach it unguarded: a body that is not exactly ``application/json``
goes to `json.loads` (deep nesting -> RecursionError, a 5,000-digit number ->
ValueError: both answered 500), ``Inference-Header-Content-Length: abc`` goes to
`int()` (500), lone surrogates are refused by orjson under ``application/json``
but not otherwise, there is no limit on the body's size (a 200 MB body took
2.5 GB), a client that never finishes its request head holds its connection
forever, and every 4xx is logged as an ERROR traceback. So:

* `RequestGuard`, the outermost ASGI layer: inference paths take POST only
  (405); the body is read with a deadline (408) up to `max_body_bytes` (413:
  the rest of an oversized body is read and discarded first, see `DRAIN_BYTES`);
  JSON bodies are parsed here, whatever their content type, with every error a
  400, lone surrogates replaced by U+FFFD (rule 1 of the tokenizer contract,
  as the CLI and the client do), and passed on as clean ``application/json``;
  the V2 binary header must be a number within the body (400).
* `HeadTimeoutProtocol`, uvicorn's HTTP/1.1 protocol with a deadline for each
  request head: a connection that does not send one in time is closed.
* `quiet_client_errors`: KServe's 4xx handlers log at ERROR with a traceback;
  this filter turns those records into one WARNING line.
"""

from __future__ import annotations

import asyncio
import json
import logging

from uvicorn.protocols.http.h11_impl import H11Protocol

from keras_seq.contracts.tokenizer import valid_text

logger = logging.getLogger(__name__)
MAX_BODY_BYTES = 4 * 1024 * 1024
BODY_TIMEOUT = 30.0  # seconds for the whole body, once the head has arrived
HEAD_TIMEOUT = 10.0  # seconds for a request head, from the connection or the previous answer
# A body over the limit is still read, up to this many bytes in all, and thrown away before
# the 413 goes out. Closing a socket with unread bytes in it makes the kernel reset the
# connection, and a client still sending then sees a broken pipe instead of the answer
# (the serving drill's 3 MB and 20 MB bodies). nginx's lingering close does the same. A body
# declared larger than this is answered at once, and so is one whose client waits for
# ``Expect: 100-continue`` (it has sent nothing yet: reading would make uvicorn invite the body).
DRAIN_BYTES = 64 * 1024 * 1024
_V2_BINARY_HEADER = b"inference-header-content-length"


def _infer_path(path: str) -> bool:
    return path.endswith((":predict", "/infer", ":classify", ":regress", "/generate"))


def clean_strings(value):
    """A parsed JSON value with every string's lone surrogates replaced by U+FFFD."""
    if isinstance(value, str):
        return valid_text(value)
    if isinstance(value, list):
        return [clean_strings(v) for v in value]
    if isinstance(value, dict):
        return {valid_text(k): clean_strings(v) for k, v in value.items()}
    return value


class ClientError(Exception):
    def __init__(self, status: int, message: str, headers: tuple = ()) -> None:
        super().__init__(message)
        self.status, self.headers = status, headers


class _BodyTooLarge(Exception):
    """A body without Content-Length passed the limit after `size` bytes; `more`: some is unread."""

    def __init__(self, size: int, more: bool) -> None:
        super().__init__(size)
        self.size, self.more = size, more


class RequestGuard:
    """ASGI middleware around the KServe app (see the module docstring)."""

    def __init__(
        self,
        app,
        max_body_bytes: int = MAX_BODY_BYTES,
        body_timeout: float = BODY_TIMEOUT,
        drain_bytes: int = DRAIN_BYTES,
    ) -> None:
        self.app, self.max_body_bytes, self.body_timeout = app, max_body_bytes, body_timeout
        self.drain_bytes = drain_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not _infer_path(scope["path"]):
            return await self.app(scope, receive, send)
        try:
            scope, body = await self._checked(scope, receive)
        except ClientError as error:
            logger.warning("client error %d on %s %s: %s", error.status, scope["method"], scope["path"], error)
            return await _send_json(send, error.status, {"error": str(error)}, error.headers)
        delivered = False

        async def replay():
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: the disconnect message, when it comes

        return await self.app(scope, replay, send)

    async def _checked(self, scope, receive) -> tuple[dict, bytes]:
        if scope["method"] != "POST":
            raise ClientError(405, f"{scope['path']} answers POST only", ((b"allow", b"POST"),))
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length")
        if declared is not None:
            if not declared.isdigit():
                raise ClientError(400, "Content-Length is not a number")
            if int(declared) > self.max_body_bytes:
                if int(declared) <= self.drain_bytes and headers.get(b"expect", b"").lower() != b"100-continue":
                    await self._discard_rest(receive, 0)
                raise ClientError(413, f"the body has {int(declared):,} bytes; the limit is {self.max_body_bytes:,}")
        try:
            body = await asyncio.wait_for(self._read_body(receive), self.body_timeout)
        except TimeoutError:
            raise ClientError(408, f"the body did not arrive within {self.body_timeout:g} s") from None
        except _BodyTooLarge as too_large:  # no Content-Length (chunked): found out while reading
            if too_large.more:
                await self._discard_rest(receive, too_large.size)
            raise ClientError(413, f"the body exceeds the limit of {self.max_body_bytes:,} bytes") from None
        binary = headers.get(_V2_BINARY_HEADER)
        if binary is not None:  # V2 binary extension: a JSON head of that many bytes, then raw tensors
            if not binary.strip().isdigit() or int(binary) > len(body):
                raise ClientError(
                    400,
                    f"Inference-Header-Content-Length must be a number of bytes within the "
                    f"body ({len(body)}); got {binary[:40].decode('latin-1')!r}",
                )
            return scope, body
        if not body.strip():
            raise ClientError(400, "the request body is empty; send a JSON object")
        try:
            payload = clean_strings(json.loads(body.decode("utf-8")))
        except UnicodeDecodeError as error:
            raise ClientError(400, f"the body is not UTF-8 ({error.reason} at byte {error.start})") from None
        except RecursionError:
            raise ClientError(400, "the JSON body is nested too deeply") from None
        except ValueError as error:  # JSONDecodeError, or a number too long to convert
            raise ClientError(400, f"the body is not valid JSON ({str(error)[:200]})") from None
        clean = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        others = [(k, v) for k, v in scope["headers"] if k not in (b"content-type", b"content-length")]
        headers = [*others, (b"content-type", b"application/json"), (b"content-length", str(len(clean)).encode())]
        return {**scope, "headers": headers}, clean

    async def _read_body(self, receive) -> bytes:
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientError(400, "the client disconnected before sending the whole body")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise _BodyTooLarge(size, message.get("more_body", False))
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def _discard_rest(self, receive, size: int) -> None:
        """Reads the rest of the body and throws it away (see `DRAIN_BYTES`), within the body
        timeout; `size` bytes of it were read already."""

        async def discard():
            total = size
            while total <= self.drain_bytes:
                message = await receive()
                total += len(message.get("body", b""))
                if message["type"] == "http.disconnect" or not message.get("more_body", False):
                    return

        try:
            await asyncio.wait_for(discard(), self.body_timeout)
        except TimeoutError:
            pass  # a slow sender gets its 413 and a closed connection


async def _send_json(send, status: int, content: dict, extra_headers: tuple = ()) -> None:
    body = json.dumps(content).encode("utf-8")
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *extra_headers]
    if status in (408, 413):  # the rest of the body was not read: the connection cannot be reused
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class HeadTimeout:
    """Mixed into uvicorn's HTTP/1.1 protocols: closes a connection whose request head does not
    arrive within `head_timeout` seconds of connecting or of the previous answer."""

    head_timeout = HEAD_TIMEOUT

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._arm()

    def _arm(self) -> None:
        waiting_on = self.cycle
        if getattr(self, "_head_timer", None) is not None:
            self._head_timer.cancel()
        self._head_timer = self.loop.call_later(self.head_timeout, self._head_expired, waiting_on)

    def _head_expired(self, waiting_on) -> None:
        if self.cycle is waiting_on and not self.transport.is_closing():  # no new request head since
            logger.info("closed a connection that sent no request within %g s", self.head_timeout)
            self.transport.close()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm()

    def connection_lost(self, exc) -> None:
        if getattr(self, "_head_timer", None) is not None:
            self._head_timer.cancel()
        super().connection_lost(exc)


class HeadTimeoutProtocol(HeadTimeout, H11Protocol):
    """uvicorn's pure-Python HTTP/1.1 protocol (h11) with the head deadline."""


def head_timeout_protocol() -> type:
    """The head deadline on uvicorn's httptools protocol (the C parser, uvicorn's own choice where
    httptools is installed), else on h11."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:
        return HeadTimeoutProtocol
    return type("HeadTimeoutHttpTools", (HeadTimeout, HttpToolsProtocol), {})


class _ClientErrorsAsOneLine(logging.Filter):
    """KServe logs each 4xx (InvalidInput, ModelNotFound) with a traceback at ERROR."""

    def filter(self, record: logging.LogRecord) -> bool:
        from kserve.errors import InvalidInput, ModelNotFound

        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, (InvalidInput, ModelNotFound)):
            record.msg, record.args, record.exc_info, record.exc_text = f"client error: {exc}", (), None, None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def quiet_client_errors() -> None:
    from kserve.logging import logger as kserve_logger

    if not any(isinstance(f, _ClientErrorsAsOneLine) for f in kserve_logger.filters):
        kserve_logger.addFilter(_ClientErrorsAsOneLine())
