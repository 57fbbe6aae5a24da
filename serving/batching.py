"""Server-side batching, as TF Serving batches (``--enable_batching``): requests that arrive
together are answered by one predictor call.

A batch closes when it holds `max_batch_size` texts or when its oldest request has waited
`batch_timeout_micros`; it then runs on one of `num_batch_threads` threads. Unlike TF Serving,
an idle server does not wait: a request that finds no other request queued or being answered
runs at once, since only a new arrival could join it; the wait applies while the server is busy. Inside the call the
predictor sorts the texts by length and runs them in chunks of similar length
(`keras_seq.serving.predictor.in_length_chunks`), so short and long texts of different clients
do not pad each other. At most `max_enqueued_batches` batches wait; past that a request is
refused with HTTP 503 (TF Serving's UNAVAILABLE), never queued without bound. With
``batch_timeout_micros: 0`` nothing waits: a free thread takes whatever has queued while it
was busy.

The options are TF Serving's ``BatchingParameters`` (session_bundle_config.proto), read from the
same text file (`read_batching_parameters`, what ``keras-seq kit`` writes as
``batching_parameters.txt``). A failing batch is answered again request by request, so one
client's bad text fails that client's request only.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import functools
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable
from pathlib import Path

logger = logging.getLogger(__name__)


class QueueFull(RuntimeError):
    """The batch queue holds `max_enqueued_batches` batches: HTTP 503, try again later."""


@dataclasses.dataclass(frozen=True)
class BatchingOptions:
    """TF Serving's BatchingParameters, the fields this server reads. Defaults: batches of up
    to 64 texts; no waiting (a batch is what queued while the threads were busy; it beat
    2000 us in benchmarks/bench_server.py); one batch thread per core, as the server's ONNX
    Runtime calls use one thread each."""

    max_batch_size: int = 64  # texts per batch
    batch_timeout_micros: int = 0  # the longest a request waits for others to join it
    max_enqueued_batches: int = 100  # then 503
    num_batch_threads: int = dataclasses.field(default_factory=lambda: os.cpu_count() or 1)

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            low = 0 if field.name == "batch_timeout_micros" else 1
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ValueError(f"batching option {field.name} must be an integer >= {low}; got {value!r}")


@functools.cache
def batching_parameters_message() -> type:
    """TF Serving's ``tensorflow.serving.BatchingParameters`` message class, declared from
    session_bundle_config.proto (the same package, names, numbers and types, which is all the
    text format reads): tensorflow-serving-api's wheel does not ship it."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, wrappers_pb2

    file = descriptor_pb2.FileDescriptorProto(
        name="keras_seq/batching_parameters.proto",
        package="tensorflow.serving",
        syntax="proto3",
        dependency=["google/protobuf/wrappers.proto"],
    )
    kind = descriptor_pb2.FieldDescriptorProto
    message = file.message_type.add(name="BatchingParameters")
    wrapped = ["max_batch_size", "batch_timeout_micros", "max_enqueued_batches", "num_batch_threads"]
    for number, name in enumerate(wrapped, 1):
        message.field.add(
            name=name,
            number=number,
            type=kind.TYPE_MESSAGE,
            type_name=".google.protobuf.Int64Value",
            label=kind.LABEL_OPTIONAL,
        )
    message.field.add(name="thread_pool_name", number=5, type=kind.TYPE_MESSAGE, label=kind.LABEL_OPTIONAL,
                      type_name=".google.protobuf.StringValue")  # fmt: skip
    message.field.add(name="allowed_batch_sizes", number=6, type=kind.TYPE_INT64, label=kind.LABEL_REPEATED)
    message.field.add(name="pad_variable_length_inputs", number=7, type=kind.TYPE_BOOL, label=kind.LABEL_OPTIONAL)
    pool = descriptor_pool.DescriptorPool()
    wrappers = descriptor_pb2.FileDescriptorProto()
    wrappers_pb2.DESCRIPTOR.CopyToProto(wrappers)
    pool.Add(wrappers)
    pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("tensorflow.serving.BatchingParameters"))


def read_batching_parameters(path: str | Path) -> BatchingOptions:
    """`BatchingOptions` from a TF Serving ``--batching_parameters_file`` (protobuf text format);
    fields left out keep their defaults. One line naming the file for anything wrong."""
    from keras_seq.serving.model_config import read_text_proto

    message = read_text_proto(path, batching_parameters_message(), "batching parameters file")
    chosen = {f.name: int(getattr(message, f.name).value) for f in dataclasses.fields(BatchingOptions)
              if message.HasField(f.name)}  # fmt: skip
    try:
        return BatchingOptions(**chosen)
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None


@dataclasses.dataclass
class _Request:
    texts: list
    future: concurrent.futures.Future
    arrived: float


class RequestBatcher:
    """Groups concurrent requests into batches. `submit(key, answer, texts)` returns a future of
    the texts' answers; requests join a batch only with requests of the same `key` (one
    predictor's one signature), and `answer(texts) -> answers` answers the whole batch.

    >>> batcher = RequestBatcher(BatchingOptions(max_batch_size=8, batch_timeout_micros=1000))
    >>> batcher.submit("upper", lambda texts: [t.upper() for t in texts], ["a", "b"]).result()
    ['A', 'B']
    >>> batcher.stop()
    """

    def __init__(self, options: BatchingOptions | None = None) -> None:
        self.options = options or BatchingOptions()
        self._queues: dict[Hashable, deque[_Request]] = {}
        self._answers: dict[Hashable, Callable[[list], list]] = {}
        self._waiting_texts = 0
        self._running = 0  # batches being answered
        self._changed = threading.Condition()
        self._stopping = False
        self.batches = 0  # counts, for tests and logs
        self.batched_requests = 0
        self._threads = [
            threading.Thread(target=self._work, name=f"keras-seq-batch-{i}", daemon=True)
            for i in range(self.options.num_batch_threads)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, key: Hashable, answer: Callable[[list], list], texts: list) -> concurrent.futures.Future:
        future: concurrent.futures.Future = concurrent.futures.Future()
        limit = self.options.max_enqueued_batches * self.options.max_batch_size
        with self._changed:
            if self._stopping:
                raise QueueFull("the server is shutting down")
            if self._waiting_texts + len(texts) > limit and self._waiting_texts:
                raise QueueFull(
                    f"the batch queue is full ({self._waiting_texts} texts waiting; max_enqueued_batches "
                    f"{self.options.max_enqueued_batches} x max_batch_size {self.options.max_batch_size}); retry later"
                )
            self._queues.setdefault(key, deque()).append(_Request(list(texts), future, time.monotonic()))
            self._answers[key] = answer
            self._waiting_texts += len(texts)
            self._changed.notify_all()
        return future

    def stop(self) -> None:
        """Answers what is queued, then ends the threads."""
        with self._changed:
            self._stopping = True
            self._changed.notify_all()
        for thread in self._threads:
            thread.join(timeout=60)

    # -- the batch threads -------------------------------------------------------------------
    def _next_batch(self) -> tuple[Callable[[list], list], list[_Request]] | None:
        """Waits for a batch to close and takes it off its queue (None: stopped and drained)."""
        timeout = self.options.batch_timeout_micros / 1e6
        with self._changed:
            while True:
                queued = [(q[0].arrived, key) for key, q in self._queues.items() if q]
                if not queued:
                    if self._stopping:
                        return None
                    self._changed.wait()
                    continue
                arrived, key = min(queued, key=lambda item: item[0])  # the request waiting longest goes first
                queue = self._queues[key]
                full = sum(len(r.texts) for r in queue) >= self.options.max_batch_size
                left = arrived + timeout - time.monotonic()
                idle = self._running == 0 and len(queued) == 1 and len(queue) == 1  # nothing else in the server
                if full or left <= 0 or idle or self._stopping:
                    break
                self._changed.wait(left)
            batch = [queue.popleft()]
            size = len(batch[0].texts)
            while queue and size + len(queue[0].texts) <= self.options.max_batch_size:
                size += len(queue[0].texts)
                batch.append(queue.popleft())
            if not queue:
                del self._queues[key]
                answer = self._answers.pop(key)
            else:
                answer = self._answers[key]
            self._waiting_texts -= size
            self._running += 1
            self.batches += 1
            self.batched_requests += len(batch)
            return answer, batch

    def _work(self) -> None:
        while (taken := self._next_batch()) is not None:
            answer, batch = taken
            try:
                _answer_batch(answer, batch)
            except Exception as error:  # noqa: BLE001 - e.g. answers that do not match the texts: the thread lives on
                logger.exception("a batch of %d requests failed", len(batch))
                for request in batch:
                    _resolve(request.future, error=error)
            finally:
                with self._changed:
                    self._running -= 1
                    self._changed.notify_all()


def _answer_batch(answer: Callable[[list], list], batch: list[_Request]) -> None:
    batch = [request for request in batch if not request.future.cancelled()]  # clients that went away
    if not batch:
        return
    texts = [text for request in batch for text in request.texts]
    try:
        answers = answer(texts)
    except Exception as error:  # noqa: BLE001 - raised where the request awaits, never in this thread
        if len(batch) == 1:
            _resolve(batch[0].future, error=error)
            return
        for request in batch:  # answered again one by one: the error goes to its own request only
            try:
                _resolve(request.future, answer(request.texts))
            except Exception as own:  # noqa: BLE001 - this request's own error
                _resolve(request.future, error=own)
        return
    if len(answers) != len(texts):
        raise ValueError(f"{len(answers)} answers for {len(texts)} texts")
    start = 0
    for request in batch:
        _resolve(request.future, answers[start : start + len(request.texts)])
        start += len(request.texts)


def _resolve(future: concurrent.futures.Future, result: list | None = None, error: Exception | None = None) -> None:
    """Sets the request's answers or error, unless its client went away (the future was cancelled,
    which may happen at any moment from the event loop's thread)."""
    try:
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)
    except concurrent.futures.InvalidStateError:
        pass
