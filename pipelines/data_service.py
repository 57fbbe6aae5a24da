"""Preprocessing on other processes or machines: TensorFlow's tf.data service.

``keras-seq data-service dispatcher --port P`` starts a `tf.data.experimental.service.DispatchServer`,
``keras-seq data-service worker --dispatcher HOST:P --port Q`` a `WorkerServer` (`run_dispatcher`,
`run_worker`); ``train.data_service = "grpc://HOST:P"`` makes `train` read its training batches
through them (`service_epoch_batches`).

**What runs where.** The trainer reads the training split once -- it needs the vocabulary and
the example lengths for the bucket plan anyway -- and writes the raw examples (strings, as the
readers give them) into ``train.data_service_shards`` TFRecord files under
``RUN/data-service/``. Each epoch the service workers read those files, tokenize with the run's
tokenizer (core TensorFlow ops; the vocabulary files are read from the run directory), shuffle
and bucket; the trainer only receives padded batches. Both must see the run directory at the same
path: one machine, or the shared volume of the Kubernetes kit.

**Why `distributed_epoch`.** The dispatcher hands each shard (the splittable source: the list of
files) to one worker, so every training example is seen exactly once per epoch. `parallel_epochs`
would have every worker produce the whole epoch: N workers, N copies. A lost worker's shard is
lost for that epoch (the service's at-most-once rule); the epoch then comes up short and training
stops with tf.data's cardinality error instead of silently training on less.

**Epoch boundaries and determinism.** Each epoch is its own dataset (shuffle seeded by
(train.seed, epoch), shard order too), registered with the dispatcher and read as one job, so
the epochs cannot bleed into each other. Each shard is shuffled and bucketed on its own, so the
*set* of batches of an epoch is fixed by the seed and the number of batches is known in advance
(``steps_per_epoch``, whichever worker takes which shard). What is not fixed is their order:
batches arrive as the workers finish them. A resumed run trains every example once per epoch
from the next epoch on, with the same batches, in an order the workers' timing decides; a
single-process run is reproducible to the batch, a run on the service to the epoch. Each shard
flushes its bucket remainders, so an epoch has up to (shards x buckets) more, smaller batches
than a single process makes: keep shards to a few per service worker.

**Reachability.** Registering a dataset with a dispatcher nobody answers blocks without end in
TensorFlow; `check_dispatcher` first waits at most ``train.data_service_timeout`` seconds for
the dispatcher's gRPC port and fails with one line naming the address.

**Listening addresses.** TensorFlow's tf.data servers listen on every interface of the machine
(``*:PORT``; `DispatcherConfig` and `WorkerConfig` have a port but no host -- measured with
``ss -ltn``). ``--host`` is the address a worker gives the dispatcher for clients to reach it
(``worker_address``); keep the ports behind a firewall or the kit's NetworkPolicy.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from keras_seq.contracts.files import replace_atomically
from keras_seq.pipelines.batching import AUTOTUNE, bucket_by_length, bucketed_batch_count
from keras_seq.pipelines.config import service_address

logger = logging.getLogger(__name__)

SHARDS_DIR = "data-service"  # in the run directory, while the run trains
PROTOCOL = "grpc"
STOP_SECONDS = 10.0  # the most a dispatcher or worker waits for its own stop after SIGTERM


def check_dispatcher(address: str, timeout: float) -> None:
    """Raises ConnectionError unless the dispatcher at `address` (grpc://HOST:PORT) answers within `timeout` s."""
    import grpc

    target = service_address(address)
    channel = grpc.insecure_channel(target)
    try:
        grpc.channel_ready_future(channel).result(timeout=timeout)
    except grpc.FutureTimeoutError:
        raise ConnectionError(
            f"the tf.data service dispatcher at {address} did not answer within {timeout:g} s "
            "(train.data_service_timeout); start it with `keras-seq data-service dispatcher "
            "--port PORT`, or check the address"
        ) from None
    finally:
        channel.close()


# -- shards ------------------------------------------------------------------------------
def _features(example, signature) -> tf.train.Example:
    parts = example if isinstance(signature, tuple) else (example,)
    feature = {}
    for i, (part, spec) in enumerate(zip(parts, signature if isinstance(signature, tuple) else (signature,))):
        values = [part] if spec.shape.rank == 0 else list(part)
        feature[f"f{i}"] = tf.train.Feature(
            bytes_list=tf.train.BytesList(value=[v.encode("utf-8") if isinstance(v, str) else bytes(v) for v in values])
        )
    return tf.train.Example(features=tf.train.Features(feature=feature))


def _parser(signature):
    specs = signature if isinstance(signature, tuple) else (signature,)
    description = {
        f"f{i}": (tf.io.FixedLenFeature([], tf.string) if s.shape.rank == 0 else tf.io.RaggedFeature(tf.string))
        for i, s in enumerate(specs)
    }

    def parse(record):
        parsed = tf.io.parse_single_example(record, description)
        parts = tuple(parsed[f"f{i}"] for i in range(len(specs)))
        return parts if isinstance(signature, tuple) else parts[0]

    return parse


def write_shards(examples, signature, folder: Path, shards: int, seed: int) -> tuple[list[Path], np.ndarray]:
    """Writes the examples into `shards` TFRecord files (example i to shard perm[i] % shards, a seeded
    permutation, so every shard is a random sample); returns the files and each example's shard."""
    folder = Path(folder)
    if folder.exists():
        shutil.rmtree(folder)  # a previous process's shards: written again, the same
    folder.mkdir(parents=True)
    examples = list(examples)
    if len(examples) < shards:
        raise ValueError(f"train.data_service_shards = {shards} is more than the {len(examples)} training examples")
    shard_of = np.random.default_rng(seed).permutation(len(examples)) % shards
    paths = [folder / f"train-{s:05d}-of-{shards:05d}.tfrecord" for s in range(shards)]
    for s, path in enumerate(paths):

        def write(tmp, s=s):
            with tf.io.TFRecordWriter(str(tmp)) as writer:
                for i in np.flatnonzero(shard_of == s):
                    writer.write(_features(examples[i], signature).SerializeToString())

        replace_atomically(path, write)
    return paths, shard_of


def service_epoch_batches(
    corpus,
    encoder,
    labels,
    lengths: np.ndarray,
    epochs: range,
    folder: Path,
    *,
    service: str,
    shards: int,
    seed: int = 0,
    dropout: dict | None = None,
    tokens_per_batch: int = 4096,
    max_batch: int = 64,
    buckets: int = 12,
    limit: int | None = None,
) -> tuple[tf.data.Dataset, int]:
    """The training batches of `epochs` (at least one), made by the tf.data service at `service`:
    (stream, batches per epoch). See the module docstring for what runs where."""
    from keras_seq.pipelines.datasets import _bucket_plan, word_dropout

    examples = corpus.examples("train")
    if limit is not None:
        examples = (e for _, e in zip(range(limit), examples))
    signature = corpus.pipeline.example_signature()
    paths, shard_of = write_shards(examples, signature, folder, shards, seed)
    if len(shard_of) != len(lengths):
        raise RuntimeError(f"{corpus.source}: the training split gave {len(lengths)} examples, then {len(shard_of)}")
    boundaries, sizes = _bucket_plan(lengths, tokens_per_batch, max_batch, buckets)
    count = sum(bucketed_batch_count(lengths[shard_of == s], boundaries, sizes) for s in range(shards))
    parse = _parser(signature)
    buffer = int(np.bincount(shard_of).max())

    def one_epoch(epoch: int) -> tf.data.Dataset:
        order = np.random.default_rng([seed, epoch]).permutation(shards)

        def one_shard(path):  # runs on a service worker: read, tokenize, shuffle, bucket
            raw = tf.data.TFRecordDataset(path).map(parse)
            encoded = corpus.pipeline.encode(raw, encoder, labels)
            shuffled = encoded.shuffle(buffer, seed=seed * 1_000_003 + epoch, reshuffle_each_iteration=False)
            return bucket_by_length(shuffled, boundaries, sizes)

        files = tf.data.Dataset.from_tensor_slices([str(paths[s]) for s in order])
        batches = (
            files.flat_map(one_shard)
            .prefetch(AUTOTUNE)
            .apply(tf.data.experimental.service.distribute(processing_mode="distributed_epoch", service=service))
        )
        return word_dropout(batches, seed=seed, epoch=epoch, **dropout) if dropout else batches

    stream = one_epoch(epochs[0])
    for epoch in epochs[1:]:
        stream = stream.concatenate(one_epoch(epoch))
    logger.info("tf.data service %s: %d shards in %s, %d batches per epoch", service, shards, folder, count)
    return stream.apply(tf.data.experimental.assert_cardinality(count * len(epochs))).prefetch(AUTOTUNE), count


class ExamplesSeen(keras.metrics.Metric):
    """The training examples of the epoch, counted in the training step itself (history.csv's
    ``examples``): a run on the service shows that each epoch saw every example once."""

    def __init__(self, name: str = "examples", **kwargs) -> None:
        super().__init__(name=name, **kwargs)
        self.count = self.add_variable(shape=(), initializer="zeros", dtype="float32", name="count")

    def update_state(self, y_true, y_pred, sample_weight=None):
        self.count.assign_add(keras.ops.cast(keras.ops.shape(y_true)[0], "float32"))

    def result(self):
        return keras.ops.copy(self.count)  # a value: the variable itself would change under the logs

    def reset_state(self):
        self.count.assign(0.0)


# -- servers -----------------------------------------------------------------------------
def _serve(server, port: int, what: str, ready=None) -> None:
    """Announces `server` (its port to `ready`), keeps it running until SIGTERM / Ctrl-C (raised
    here by the CLI), then stops it."""
    logger.info("tf.data service %s on port %d", what, port)
    if ready:
        ready(port)
    try:
        while True:  # not server.join(): a C++ wait would keep Python's signal handlers from running
            time.sleep(0.5)
    finally:
        _stop(server, what.split(",")[0])


def _stop(server, what: str, seconds: float = STOP_SECONDS) -> None:
    """`server.stop()`, waited for at most `seconds` (a worker finishing a task on a saturated CPU can
    take long; nothing it holds must outlive the process: the dispatcher's journal is written as it goes)."""
    started = time.monotonic()
    stopper = threading.Thread(target=server.stop, name=f"stop-{what}", daemon=True)
    stopper.start()
    stopper.join(seconds)
    if stopper.is_alive():
        logger.warning("%s did not stop within %g s; exiting without it", what, seconds)
    else:
        logger.info("%s stopped (%.1f s)", what, time.monotonic() - started)


def run_dispatcher(port: int, work_dir: str | None = None, ready=None) -> None:
    """A tf.data service dispatcher on `port` (0: any free one) until SIGTERM. `work_dir` keeps
    its journal, so a restarted dispatcher resumes its jobs (fault-tolerant mode)."""
    config = tf.data.experimental.service.DispatcherConfig(
        port=port, protocol=PROTOCOL, work_dir=work_dir, fault_tolerant_mode=bool(work_dir)
    )
    server = tf.data.experimental.service.DispatchServer(config)
    _serve(server, int(server.target.rsplit(":", 1)[1]), "dispatcher", ready)


def run_worker(dispatcher: str, port: int, host: str = "127.0.0.1", ready=None) -> None:
    """A tf.data service worker of the dispatcher at `dispatcher` (HOST:PORT) on `port` until SIGTERM;
    `host` is the address it gives the dispatcher for trainers to reach it."""
    dispatcher = service_address(dispatcher if "://" in dispatcher else f"{PROTOCOL}://{dispatcher}")
    check_dispatcher(f"{PROTOCOL}://{dispatcher}", 30.0)
    config = tf.data.experimental.service.WorkerConfig(
        dispatcher_address=dispatcher, port=port, worker_address=f"{host}:%port%", protocol=PROTOCOL
    )
    server = tf.data.experimental.service.WorkerServer(config)
    _serve(server, int(server._address.rsplit(":", 1)[1]), f"worker, of the dispatcher at {dispatcher}", ready)
