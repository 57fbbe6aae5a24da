"""Training on several replicas or machines, on TensorFlow's own engine (`tf.distribute`).

``train.strategy`` (``keras-seq train --strategy``):

* ``"default"`` -- one process, TensorFlow's own device placement (what `train` always did).
* ``"mirrored"`` -- `tf.distribute.MirroredStrategy`: one replica per GPU of this machine
  (on a machine without one, a single CPU replica).
* ``"multi_worker"`` -- `tf.distribute.MultiWorkerMirroredStrategy`: the cluster and this
  process's place in it come from ``TF_CONFIG``, as TensorFlow's docs and Kubeflow's TFJob
  set it (``{"cluster": {"chief": [...], "worker": [...]}, "task": {"type": ..., "index": ...}}``).
  Every worker runs the same command; the chief (the ``chief`` task, else worker 0) writes
  the run directory, the others write to temporary folders they remove when they stop.

**Batches.** ``train.tokens_per_batch`` / ``train.max_batch`` are the *global* batch. Every worker
reads the whole training split, makes the same global batches (the same seeded shuffle and
bucket plan) and keeps its rows of each: replica r of R takes rows r, r+R, r+2R, ... (a batch
with fewer rows than replicas lends its rows round: no replica gets an empty batch). Each row carries
a loss weight that makes the replicas' losses add up to the mean over the whole global batch
(Keras averages each replica's loss over the replica's own rows or tokens), so every step takes
the gradient a single process would take on that batch, every worker takes the same number of
steps per epoch, and the learning rate of a single-process run with that global batch fits. Sharding a
*bucketed* stream by element or by file would not do that: each worker's buckets would flush a
different number of remainder batches, and the all-reduce would wait for a step one worker
never takes. This is tf.data's DATA sharding (each worker reads everything and keeps its share)
done on rows of global batches, where bucketing needs it; the datasets reach Keras through
`distribute_datasets_from_function`, so tf.data's auto-sharding stays off. Where there are many
files -- the tf.data service's shards (`keras_seq.pipelines.data_service`) -- the data is split by
FILE: the dispatcher hands each shard whole to one worker.

Scaling the global batch with the number of workers (each replica keeping its batch) multiplies
the examples per step: raise the learning rate with it (linearly for SGD, Goyal et al. 2017, with
a warm-up; Adam usually tolerates less than linear) -- or keep the global batch and the learning
rate, and the run trains as the single-process one did.

Every decision a worker makes alone (the epoch to resume from, the vocabulary, the time limit,
a callback's validation score, the final weights) is checked or agreed across workers with one
collective, so workers never silently diverge.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf

from keras_seq.pipelines.config import STRATEGIES

logger = logging.getLogger(__name__)

_STRATEGIES: dict[str, tf.distribute.Strategy] = {}  # a process can start MultiWorkerMirroredStrategy once


def read_tf_config(environ: dict | None = None) -> dict:
    """TF_CONFIG, checked: one line naming the field at fault."""
    text = (os.environ if environ is None else environ).get("TF_CONFIG")
    if not text:
        raise ValueError(
            "train.strategy = 'multi_worker' reads the cluster from the TF_CONFIG environment "
            "variable, which is not set (see the README, 'Training on several machines')"
        )
    try:
        config = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"TF_CONFIG is not valid JSON ({error.msg} at character {error.pos})") from None
    if not isinstance(config, dict):
        raise ValueError("TF_CONFIG must be a JSON object with 'cluster' and 'task'")
    cluster, task = config.get("cluster"), config.get("task")
    if not isinstance(cluster, dict) or not cluster:
        raise ValueError("TF_CONFIG field 'cluster' must map job names (chief, worker) to lists of host:port")
    for job, addresses in cluster.items():
        if not isinstance(addresses, list) or not all(isinstance(a, str) and ":" in a for a in addresses):
            raise ValueError(f"TF_CONFIG field 'cluster.{job}' must be a list of 'host:port' strings")
    if not isinstance(task, dict) or not isinstance(task.get("type"), str) or task["type"] not in cluster:
        raise ValueError(f"TF_CONFIG field 'task.type' must name a job of the cluster ({sorted(cluster)})")
    index = task.get("index")
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(cluster[task["type"]]):
        raise ValueError(
            f"TF_CONFIG field 'task.index' must be 0 .. {len(cluster[task['type']]) - 1} for job "
            f"{task['type']!r}; received {index!r}"
        )
    if set(cluster) - {"chief", "worker"}:
        raise ValueError(
            f"TF_CONFIG field 'cluster': MultiWorkerMirroredStrategy takes 'chief' and 'worker' jobs; "
            f"received {sorted(cluster)}"
        )
    return config


def make_strategy(name: str) -> tf.distribute.Strategy:
    """The `tf.distribute` strategy called `name` (one of `STRATEGIES`), created once per process.

    ``multi_worker`` must be created before TensorFlow runs its first operation in the process
    (TensorFlow configures collective ops at start-up); `train_run` creates it first."""
    if name not in STRATEGIES:
        raise ValueError(f"train.strategy must be one of {STRATEGIES}; received {name!r}")
    if name not in _STRATEGIES:
        from keras_seq._keras_compat import distributed_fit

        if name == "default":
            _STRATEGIES[name] = tf.distribute.get_strategy()
        elif name == "mirrored":
            distributed_fit()
            _STRATEGIES[name] = tf.distribute.MirroredStrategy()
        else:
            read_tf_config()
            distributed_fit()
            try:
                _STRATEGIES[name] = tf.distribute.MultiWorkerMirroredStrategy()
            except (RuntimeError, ValueError) as error:
                raise RuntimeError(
                    f"cannot start MultiWorkerMirroredStrategy ({' '.join(str(error).split())[:300]}); "
                    "it must be created before TensorFlow runs anything in the process"
                ) from None
    return _STRATEGIES[name]


def _digest_number(text: str) -> int:
    """A digest as one int64 (60 bits of SHA-256: enough to tell honest differences apart)."""
    return int(hashlib.sha256(text.encode("utf-8")).hexdigest()[:15], 16)


@dataclass
class Placement:
    """Where this process trains: its strategy, whether it is the chief, and how many replicas there are."""

    strategy: tf.distribute.Strategy
    name: str = "default"
    is_chief: bool = True
    worker_index: int = 0
    workers: int = 1
    replicas: int = 1

    @property
    def distributed(self) -> bool:
        return self.replicas > 1 or self.workers > 1

    def scope(self):
        """The strategy's scope for building and compiling the model (nothing in a single process)."""
        return self.strategy.scope() if self.name != "default" else contextlib.nullcontext()

    # -- agreement -------------------------------------------------------------------
    def gather(self, values: list[int]) -> np.ndarray:
        """Each worker's `values` (int64), one row per worker in task order; one collective."""
        local = np.asarray([values], np.int64)
        if self.workers == 1:
            return local
        per_replica = self.strategy.run(lambda: tf.constant(local))
        return np.asarray(self.strategy.gather(per_replica, axis=0))[:: self.replicas // self.workers]

    def check_same(self, what: str, text: str) -> None:
        """Raises unless every worker holds the same `text` (a digest, a number)."""
        rows = self.gather([_digest_number(text)])
        if len(set(rows[:, 0].tolist())) > 1:
            raise RuntimeError(
                f"the workers disagree on {what} (worker {self.worker_index} has {text!r}); every "
                "worker must run the same command on the same data"
            )

    def any(self, flag: bool) -> bool:
        """Whether any worker says `flag` (a stop decision every worker must share)."""
        return bool(self.gather([int(flag)]).max())

    def chiefs(self, values: list[float]) -> list[float]:
        """The chief's `values` on every worker (scores a worker computes alone, made identical)."""
        if self.workers == 1:
            return values
        bits = np.asarray(values, np.float64).view(np.int64)  # exact: the float's own bits
        return self.gather(bits.tolist())[0].view(np.float64).tolist()

    def barrier(self) -> None:
        """Returns once every worker got here (the chief finishes the run before the others leave)."""
        self.gather([0])

    # -- data ------------------------------------------------------------------------------
    def distribute(self, dataset: tf.data.Dataset | None, unit: str | None = None):
        """Global batches -> this worker's replicas' rows of each (with `unit`, and the loss weights
        that keep each step's gradient the global batch's; see `replica_batches`); the dataset
        itself in a single process."""
        if dataset is None or not self.distributed:
            return dataset
        return replica_batches(dataset, self.strategy, unit)


def placement(name: str) -> Placement:
    """The `Placement` of this process under strategy `name`."""
    strategy = make_strategy(name)
    if name != "multi_worker":
        return Placement(strategy, name, replicas=strategy.num_replicas_in_sync)
    resolver = strategy.cluster_resolver
    cluster = resolver.cluster_spec().as_dict()
    order = [("chief", i) for i in range(len(cluster.get("chief", [])))] + [
        ("worker", i) for i in range(len(cluster.get("worker", [])))
    ]
    index = order.index((resolver.task_type, resolver.task_id))
    return Placement(
        strategy,
        name,
        is_chief=index == 0,
        worker_index=index,
        workers=len(order),
        replicas=strategy.num_replicas_in_sync,
    )


def _rows(element, replica, replicas, unit: str | None = None):
    """Replica `replica`'s rows of one global batch: r, r+R, ...; one row, lent round (weight 0),
    when there are fewer rows than replicas. With `unit`, an (inputs, targets) element gets
    per-row loss weights that make the replicas' losses add up to the global batch's mean: rows
    weigh R * n_r / N ("rows": one loss per row) or R * v_r / V ("tokens": per valid target
    token), where n_r, v_r are the replica's and N, V the batch's."""
    leaves = tf.nest.flatten(element)
    count = tf.shape(leaves[0], out_type=tf.int64)[0]
    index = tf.range(replica, count, replicas, dtype=tf.int64)
    lent = tf.size(index) == 0
    index = tf.cond(lent, lambda: tf.reshape(replica % count, [1]), lambda: index)
    share = tf.nest.map_structure(lambda t: tf.gather(t, index), element)
    if unit is None:
        return share
    inputs, targets = element
    if unit == "rows":
        part, whole = tf.cast(tf.size(index), tf.float32), tf.cast(count, tf.float32)
    else:
        part = tf.reduce_sum(tf.cast(share[1] != 0, tf.float32))
        whole = tf.reduce_sum(tf.cast(targets != 0, tf.float32))
    weight = tf.where(lent, 0.0, replicas * part / tf.maximum(whole, 1.0))
    return share[0], share[1], tf.fill(tf.shape(index), weight)


def replica_batches(dataset: tf.data.Dataset, strategy: tf.distribute.Strategy, unit: str | None = None):
    """A dataset of global batches as `strategy`'s distributed dataset: each replica gets its rows
    of every batch, and every worker's step count is the global one. With `unit` ("rows" or
    "tokens": what the loss averages over), (inputs, targets) batches also get the loss weights
    under which each step's gradient is the global batch's (see `_rows`). For `model.fit` under
    a strategy with your own `keras_seq.pipelines.text_dataset` (pass ``steps_per_epoch``)."""
    replicas = strategy.num_replicas_in_sync
    single = not isinstance(dataset.element_spec, tuple)
    if unit is not None and (single or len(dataset.element_spec) != 2):
        raise ValueError("loss weights need (inputs, targets) elements")
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF

    def per_worker(context: tf.distribute.InputContext) -> tf.data.Dataset:
        local = replicas // context.num_input_pipelines
        first = context.input_pipeline_id * local

        def pick(replica):
            return lambda *parts: _rows(parts[0] if single else parts, replica, replicas, unit)

        if local == 1:
            out = dataset.map(pick(first))
        else:  # one element per local replica, in replica order (how tf.distribute hands them out)
            out = dataset.flat_map(
                lambda *parts: tf.data.Dataset.range(first, first + local).map(
                    lambda r: _rows(parts[0] if single else parts, r, replicas, unit)
                )
            )
        return out.with_options(options)

    return strategy.distribute_datasets_from_function(per_worker)


def files_digest(folder: str | Path, names: list[str]) -> str:
    """SHA-256 over the named files of `folder` (the vocabulary contract), for `Placement.check_same`."""
    digest = hashlib.sha256()
    for name in sorted(names):
        digest.update(name.encode("utf-8") + b"\0" + (Path(folder) / name).read_bytes() + b"\0")
    return digest.hexdigest()


def weights_digest(weights: list) -> str:
    """SHA-256 of a model's weights (bytes), to show two workers hold the same model."""
    digest = hashlib.sha256()
    for array in weights:
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()
