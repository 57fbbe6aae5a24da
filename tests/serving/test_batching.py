"""Server-side batching (`keras_seq.serving.batching`): requests that arrive together share one
answer call, each gets its own answers back, one bad request fails alone, the queue is bounded,
and TF Serving's batching parameters file is read as TF Serving reads it."""

from __future__ import annotations

import threading

import pytest

from keras_seq.serving.batching import BatchingOptions, QueueFull, RequestBatcher, read_batching_parameters
from keras_seq.serving.commands import batching_options


class Recorder:
    """An answer function that records each batch it answers; raises on a text "bad"."""

    def __init__(self, gate: threading.Event | None = None) -> None:
        self.batches: list[list[str]] = []
        self.gate = gate

    def __call__(self, texts: list) -> list:
        if self.gate is not None:
            self.gate.wait(10)
        self.batches.append(list(texts))
        if "bad" in texts:
            raise ValueError("a bad text")
        return [text.upper() for text in texts]


def _taken(batcher: RequestBatcher, batches: int) -> None:
    """Waits until the batch threads have taken `batches` batches off the queue."""
    for _ in range(3000):
        if batcher.batches >= batches:
            return
        threading.Event().wait(0.01)
    raise AssertionError(f"the batcher took {batcher.batches} batches in 30 s, not {batches}")


def test_the_example_in_the_docstring_runs():
    import doctest

    import keras_seq.serving.batching as module

    assert doctest.testmod(module).failed == 0


def _busy(batcher: RequestBatcher, gate: threading.Event):
    """A request of its own key that holds the batch thread until `gate` opens: the server is busy."""
    held = batcher.submit("busy", Recorder(gate), ["busy"])
    _taken(batcher, 1)
    return held


def test_concurrent_requests_share_batches_and_each_gets_its_own_answers():
    answer, gate = Recorder(), threading.Event()
    # a long wait, so the batches close because they are full, not because time ran out
    batcher = RequestBatcher(BatchingOptions(max_batch_size=8, batch_timeout_micros=10_000_000, num_batch_threads=1))
    try:
        held = _busy(batcher, gate)
        futures = [batcher.submit("model", answer, [f"t{i}a", f"t{i}b"]) for i in range(16)]
        gate.set()
        results = [f.result(timeout=30) for f in futures]
        assert held.result(timeout=30) == ["BUSY"]
    finally:
        gate.set()
        batcher.stop()
    assert results == [[f"T{i}A", f"T{i}B"] for i in range(16)]
    assert [len(b) for b in answer.batches] == [8, 8, 8, 8]  # four requests of two texts per batch
    assert batcher.batches == 5 and batcher.batched_requests == 17


def test_an_idle_server_answers_a_lone_request_without_waiting():
    # TF Serving would wait the whole timeout; nothing could join this request but a new arrival
    batcher = RequestBatcher(BatchingOptions(batch_timeout_micros=600_000_000))  # ten minutes
    try:
        assert batcher.submit("model", Recorder(), ["alone"]).result(timeout=30) == ["ALONE"]
    finally:
        batcher.stop()


def test_requests_of_different_keys_never_share_a_batch():
    upper, lower, gate = Recorder(), Recorder(), threading.Event()
    batcher = RequestBatcher(BatchingOptions(max_batch_size=4, batch_timeout_micros=10_000_000, num_batch_threads=1))
    try:
        _busy(batcher, gate)
        futures = [batcher.submit(key, fn, [key]) for _ in range(4) for key, fn in (("a", upper), ("b", lower))]
        gate.set()
        assert [f.result(timeout=30) for f in futures] == [["A"], ["B"]] * 4
    finally:
        gate.set()
        batcher.stop()
    assert upper.batches == [["a"] * 4] and lower.batches == [["b"] * 4]


def test_a_request_larger_than_the_batch_runs_alone_and_the_rest_wait_their_turn():
    answer = Recorder()
    batcher = RequestBatcher(BatchingOptions(max_batch_size=4, batch_timeout_micros=0))
    try:
        big = batcher.submit("m", answer, [str(i) for i in range(10)])
        assert big.result(timeout=30) == [str(i) for i in range(10)]
    finally:
        batcher.stop()
    assert answer.batches == [[str(i) for i in range(10)]]


def test_one_bad_request_fails_alone_the_others_in_its_batch_are_answered():
    gate = threading.Event()
    answer = Recorder(gate)
    batcher = RequestBatcher(BatchingOptions(max_batch_size=16, batch_timeout_micros=0, num_batch_threads=1))
    try:
        first = batcher.submit("m", answer, ["first"])  # holds the thread until the gate opens
        _taken(batcher, 1)
        futures = [batcher.submit("m", answer, [t]) for t in ("good", "bad", "fine")]
        gate.set()
        assert first.result(timeout=30) == ["FIRST"]
        assert futures[0].result(timeout=30) == ["GOOD"] and futures[2].result(timeout=30) == ["FINE"]
        with pytest.raises(ValueError, match="a bad text"):
            futures[1].result(timeout=30)
    finally:
        batcher.stop()
    assert ["good", "bad", "fine"] in answer.batches  # they were batched, then answered one by one


def test_the_queue_is_bounded_and_says_so():
    gate = threading.Event()
    batcher = RequestBatcher(
        BatchingOptions(max_batch_size=2, batch_timeout_micros=0, max_enqueued_batches=2, num_batch_threads=1)
    )
    try:
        running = batcher.submit("m", Recorder(gate), ["a"])  # taken off the queue, held at the gate
        _taken(batcher, 1)
        queued = [batcher.submit("m", Recorder(gate), [t]) for t in "bcde"]  # 2 batches x 2 texts
        with pytest.raises(QueueFull, match="batch queue is full .*max_enqueued_batches 2 x max_batch_size 2"):
            batcher.submit("m", Recorder(gate), ["f"])
        gate.set()
        assert [f.result(timeout=30) for f in [running, *queued]] == [["A"], ["B"], ["C"], ["D"], ["E"]]
    finally:
        gate.set()
        batcher.stop()
    with pytest.raises(QueueFull, match="shutting down"):
        batcher.submit("m", Recorder(), ["late"])


def test_stop_answers_what_is_queued():
    answer = Recorder()
    batcher = RequestBatcher(BatchingOptions(max_batch_size=64, batch_timeout_micros=60_000_000))
    futures = [batcher.submit("m", answer, [str(i)]) for i in range(3)]  # waiting a minute for company
    batcher.stop()
    assert [f.result(timeout=1) for f in futures] == [["0"], ["1"], ["2"]]


def test_tf_serving_batching_parameters_file_is_read_as_tf_serving_reads_it(tmp_path):
    path = tmp_path / "batching_parameters.txt"
    path.write_text(
        "# a comment\nmax_batch_size { value: 16 }\nbatch_timeout_micros { value: 500 }\n"
        "num_batch_threads { value: 3 }\npad_variable_length_inputs: true\nallowed_batch_sizes: 8\n"
    )
    assert read_batching_parameters(path) == BatchingOptions(16, 500, 100, 3)
    (tmp_path / "empty.txt").write_text("")
    assert read_batching_parameters(tmp_path / "empty.txt") == BatchingOptions()
    # flags go over the file; --no-batching is None; options with --no-batching are refused
    assert batching_options(None, str(path), max_batch_size=32, batch_timeout_micros=None) == BatchingOptions(
        32, 500, 100, 3
    )
    assert batching_options(None) == batching_options(True) == BatchingOptions()  # on by default
    assert batching_options(False) is None
    assert batching_options(None, batch_timeout_micros=5) == BatchingOptions(batch_timeout_micros=5)
    with pytest.raises(ValueError, match="--no-batching cannot be given with batching options"):
        batching_options(False, max_batch_size=8)
    # one line naming the file for each fault
    (tmp_path / "bad.txt").write_text("max_batch_size: {")
    with pytest.raises(ValueError, match=r"bad\.txt: not a TF Serving BatchingParameters"):
        read_batching_parameters(tmp_path / "bad.txt")
    (tmp_path / "zero.txt").write_text("max_batch_size { value: 0 }")
    with pytest.raises(ValueError, match=r"zero\.txt: batching option max_batch_size must be an integer >= 1"):
        read_batching_parameters(tmp_path / "zero.txt")
    with pytest.raises(FileNotFoundError, match=r"missing\.txt: missing"):
        read_batching_parameters(tmp_path / "missing.txt")


def test_texts_are_cut_into_chunks_of_bounded_padding_and_answered_in_order():
    from keras_seq.serving.predictor import in_length_chunks

    # lengths 1..40 in a shuffled order, an astral character counted once (the JS twin pins the same cuts)
    lengths = [7, 1, 40, 3, 2, 10, 11, 16, 5, 24, 4, 6, 30, 8, 9, 12]
    texts = ["\U0001f600" + "x" * (n - 1) for n in lengths]
    seen: list = []

    def answer(chunk: list) -> list:
        seen.append([len(t) for t in chunk])
        return [len(t) * 2 for t in chunk]

    assert in_length_chunks(texts, answer) == [n * 2 for n in lengths]
    assert seen == [[1], [2, 3], [4, 5, 6], [7, 8, 9, 10], [11, 12, 16], [24, 30], [40]]
    for chunk in seen:  # the longest at most 1.5 times the shortest
        assert max(chunk) <= 1.5 * min(chunk)
    seen.clear()
    in_length_chunks(["same"] * 40, answer)
    assert [len(c) for c in seen] == [16, 16, 8]  # and at most 16 texts a call


def test_clients_that_went_away_and_a_broken_answer_do_not_stop_the_batch_thread():
    gate = threading.Event()
    batcher = RequestBatcher(BatchingOptions(max_batch_size=4, batch_timeout_micros=0, num_batch_threads=1))
    try:
        held = batcher.submit("m", Recorder(gate), ["a"])
        _taken(batcher, 1)
        gone = batcher.submit("m", Recorder(gate), ["b"])
        assert held.cancel() and gone.cancel()  # both clients disconnect while their batches wait or run
        gate.set()
        broken = batcher.submit("m", lambda texts: [], ["c"])  # answers that do not match the texts
        with pytest.raises(ValueError, match="0 answers for 1 texts"):
            broken.result(timeout=30)
        assert batcher.submit("m", Recorder(), ["d"]).result(timeout=30) == ["D"]  # the thread lives on
    finally:
        gate.set()
        batcher.stop()
