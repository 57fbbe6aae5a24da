"""Training on several workers (tf.distribute.MultiWorkerMirroredStrategy) and on the tf.data
service: real worker and server processes on loopback, each bounded in time."""

from __future__ import annotations

import concurrent.futures
import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import REPO, cli_in_process, free_port, run_python

pytestmark = pytest.mark.slow  # real worker and server processes: minutes

DEMO = REPO / "pipelines" / "configs" / "demo.toml"
TRAIN_EXAMPLES = 1200  # enough for an epoch to last while a worker is killed in it
LIMIT_S = 180  # any one process of these tests
# The demo config at a learning rate where its loss falls smoothly (at its own 0.01 the second
# epoch is a sharp drop, which magnifies any difference between two runs).
SETTINGS = ["train.learning_rate=0.003"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    from keras_seq.pipelines.synthetic import write_corpus

    return write_corpus(
        tmp_path_factory.mktemp("distributed") / "data", {"train": TRAIN_EXAMPLES, "dev": 100, "test": 100}
    )


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CONFIG", "KERAS_SEQ_DEBUG")}
    return {**env, "TF_CPP_MIN_LOG_LEVEL": "2", **extra}


def start_workers(
    run: Path, corpus: Path, logs: Path, *, workers: int = 2, epochs: int = 2, sources: list | None = None
) -> list[subprocess.Popen]:
    """`keras-seq train demo --strategy multi_worker` once per worker of a loopback cluster; each
    worker's temporary folders go to LOGS/tmpN, its output to LOGS/workerN.{out,err}."""
    ports = [free_port() for _ in range(workers)]
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    processes = []
    for index in range(workers):
        tmp = logs / f"tmp{index}"
        tmp.mkdir(parents=True, exist_ok=True)
        tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        source = (sources or [corpus] * workers)[index]
        command = [
            sys.executable,
            "-m",
            "keras_seq.cli",
            "train",
            str(DEMO),
            "--set",
            f'data.source="{source}"',
            "--set",
            f"train.epochs={epochs}",
            *[a for v in SETTINGS for a in ("--set", v)],
            "--out",
            str(run),
            "--strategy",
            "multi_worker",
            "--progress",
            "0",
        ]
        processes.append(
            subprocess.Popen(
                command,
                env=_env(TF_CONFIG=tf_config, TMPDIR=str(tmp)),
                cwd=REPO,
                stdout=open(logs / f"worker{index}.out", "wb"),
                stderr=open(logs / f"worker{index}.err", "wb"),
            )
        )
    return processes


def wait_all(processes: list[subprocess.Popen], timeout: float = LIMIT_S) -> list[int]:
    deadline = time.monotonic() + timeout
    codes = []
    for process in processes:
        try:
            codes.append(process.wait(timeout=max(1.0, deadline - time.monotonic())))
        except subprocess.TimeoutExpired:
            for p in processes:
                p.kill()
            pytest.fail(f"a training worker did not finish within {timeout} s")
    return codes


def history(run: Path) -> list[dict]:
    with (run / "history.csv").open() as handle:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(handle)]


def log_text(logs: Path, name: str) -> str:
    return (logs / name).read_text(errors="replace")


@pytest.fixture(scope="module")
def two_workers(corpus, tmp_path_factory):
    """The demo config trained 2 epochs by two workers, and by one process beside them."""
    root = tmp_path_factory.mktemp("two-workers")
    run, logs = root / "run", root / "logs"
    processes = start_workers(run, corpus, logs)
    from keras_seq.pipelines.config import load_config
    from keras_seq.pipelines.train import train_run

    single = root / "single"
    train_run(load_config(DEMO, [f'data.source="{corpus}"', "train.epochs=2", *SETTINGS]), single, verbose=0)
    codes = wait_all(processes)
    return {"run": run, "logs": logs, "single": single, "codes": codes}


def test_two_workers_train_one_model_and_write_the_run_once(two_workers):
    run, logs = two_workers["run"], two_workers["logs"]
    assert two_workers["codes"] == [0, 0], log_text(logs, "worker0.err")[-2000:] + log_text(logs, "worker1.err")[-2000:]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["distribution"]["workers"] == 2 and metrics["distribution"]["replicas"] == 2
    # The other worker's trained weights are the chief's, bit for bit (it says so, and prints its digest).
    worker = json.loads(log_text(logs, "worker1.out"))
    assert worker["weights_sha256"] == metrics["distribution"]["weights_sha256"]
    assert f"trained weights sha256 {worker['weights_sha256']}" in log_text(logs, "worker1.err")
    # The run directory is written once, by the chief; the other worker's temporary folders are gone.
    assert sorted(p.name for p in run.iterdir()) == sorted(
        [
            ".keras-seq.lock",  # the chief's writer lock (released: the file stays, as flock files do)
            "config.toml",
            "curves.png",
            "history.csv",
            "labels.txt",
            "logs",
            "metrics.json",
            "model.keras",
            "tokenizer.json",
            "vocab.txt",
        ]
    )
    assert not any((logs / "tmp1").iterdir()) and not any((logs / "tmp0").iterdir())
    assert json.loads(log_text(logs, "worker0.out"))["distribution"]["weights_sha256"] == worker["weights_sha256"]


def test_two_workers_follow_the_single_process_loss_curve(two_workers):
    """Same global batches and seed, and loss weights that make each step's gradient the global
    batch's: the validation loss -- the model's own measure after each epoch -- matches to float
    rounding (the all-reduce adds in another order). The logged *training* loss and accuracy are
    Keras' running means, which weigh each replica's mean by its own rows and count a lent row
    twice, so they differ in the 3rd-4th digit."""
    together, alone = history(two_workers["run"]), history(two_workers["single"])
    assert [r["epoch"] for r in together] == [r["epoch"] for r in alone] == [0.0, 1.0]
    for a, b in zip(together, alone):
        assert abs(a["val_loss"] - b["val_loss"]) < 1e-5, (a, b)
        assert abs(a["val_accuracy"] - b["val_accuracy"]) < 1e-6, (a, b)
        assert abs(a["loss"] - b["loss"]) < 5e-3 and abs(a["accuracy"] - b["accuracy"]) < 5e-3, (a, b)


def test_workers_with_different_data_refuse_to_train(corpus, tmp_path):
    """Each worker builds the vocabulary itself; workers that would build different ones stop at once."""
    other = tmp_path / "other"  # the same layout, other words
    other.mkdir()
    for split in ("train", "dev", "test"):
        rows = [{"text": f"zebra {i % 7} yak", "label": ("pos", "neg")[i % 2]} for i in range(200)]
        (other / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    codes = wait_all(start_workers(tmp_path / "run", corpus, tmp_path / "logs", sources=[corpus, other]))
    assert codes[0] != 0 and codes[1] != 0
    for name in ("worker0.err", "worker1.err"):
        assert "the workers disagree on the vocabulary and label files" in log_text(tmp_path / "logs", name)
    assert not (tmp_path / "run" / "metrics.json").exists()


def test_a_killed_worker_is_restarted_and_the_run_resumes_exactly(corpus, tmp_path, two_workers):
    """SIGKILL one worker in epoch 2; the chief fails with one line; the job restarted resumes
    after epoch 1, trains epoch 2 once, and ends where the uninterrupted two-worker run ended."""
    run, logs = tmp_path / "run", tmp_path / "logs"
    processes = start_workers(run, corpus, logs)
    state = run / "backup" / "state.json"
    deadline = time.monotonic() + LIMIT_S
    while not (state.exists() and '"epoch": 1' in state.read_text()):
        assert time.monotonic() < deadline and processes[0].poll() is None, "epoch 1 was never backed up"
        time.sleep(0.05)
    processes[1].send_signal(signal.SIGKILL)
    killed = time.monotonic()
    assert processes[0].wait(timeout=120) != 0
    seconds_to_fail = time.monotonic() - killed
    chief_error = log_text(logs, "worker0.err")
    assert "the cluster lost a worker" in chief_error and "resume after epoch 1" in chief_error, chief_error[-2000:]
    assert seconds_to_fail < 120

    codes = wait_all(start_workers(run, corpus, tmp_path / "logs2"))
    assert codes == [0, 0], log_text(tmp_path / "logs2", "worker0.err")[-2000:]
    for name in ("worker0.err", "worker1.err"):
        assert "resumed after epoch 1" in log_text(tmp_path / "logs2", name)
    rows = history(run)
    assert [r["epoch"] for r in rows] == [0.0, 1.0]  # each epoch once: none twice, none skipped
    assert rows == history(two_workers["run"])  # the same batches, the same reductions: the same run


# -- the tf.data service ------------------------------------------------------------------
def _server(args: list, log: Path) -> tuple[subprocess.Popen, int]:
    process = subprocess.Popen(
        [sys.executable, "-m", "keras_seq.cli", "data-service", *args],
        env=_env(),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=open(log, "wb"),
        text=True,
    )
    line = process.stdout.readline()  # the port, once it listens
    if not line.strip().isdigit():
        process.kill()
        pytest.fail(f"the data-service {args[0]} did not start: {log.read_text()[-1500:]}")
    return process, int(line)


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    logs = tmp_path_factory.mktemp("service")
    dispatcher, port = _server(["dispatcher", "--port", "0"], logs / "dispatcher.err")
    with concurrent.futures.ThreadPoolExecutor(2) as pool:  # both start at once
        workers = [
            f.result()[0]
            for f in [
                pool.submit(
                    _server, ["worker", "--dispatcher", f"127.0.0.1:{port}", "--port", "0"], logs / f"worker{i}.err"
                )
                for i in range(2)
            ]
        ]
    yield {"address": f"grpc://127.0.0.1:{port}", "processes": [dispatcher, *workers], "logs": logs}
    for process in [*workers, dispatcher]:
        if process.poll() is None:
            process.kill()


def test_service_workers_make_every_training_example_once_per_epoch(service, corpus, tmp_path):
    """Two service workers make the batches of one epoch: together they hold each training
    example exactly once, and the count of batches is the one promised in advance."""
    import numpy as np

    from keras_seq.pipelines.data_service import service_epoch_batches
    from keras_seq.pipelines.datasets import LabelLookup, build_label_vocab, encoded_dataset, prepare_text_dir
    from keras_seq.pipelines.readers import open_corpus
    from keras_seq.pipelines.tokenize import TokenizerSpec

    data = open_corpus(corpus, "classify")
    encoder = prepare_text_dir(data, tmp_path, TokenizerSpec(level="word", max_len=32), vocab_size=200)
    labels = LabelLookup(build_label_vocab(data, tmp_path))
    local = [
        (tuple(ids.numpy().tolist()), int(label)) for ids, label in encoded_dataset(data, "train", encoder, labels)
    ]
    lengths = np.array([len(ids) for ids, _ in local])
    stream, count = service_epoch_batches(
        data,
        encoder,
        labels,
        lengths,
        range(1),
        tmp_path / "shards",
        service=service["address"],
        shards=8,
        tokens_per_batch=1024,
    )
    served, batches = [], 0
    for ids, label in stream:
        batches += 1
        for row, y in zip(ids.numpy(), label.numpy()):
            served.append((tuple(int(i) for i in row[row != 0]), int(y)))
    assert batches == count
    assert sorted(served) == sorted(local) and len(served) == TRAIN_EXAMPLES


def test_training_through_the_service_counts_each_example_once(service, corpus, tmp_path):
    run = tmp_path / "run"
    code, out, err = cli_in_process(  # (in this process: the service's servers are the other processes)
        "train",
        str(DEMO),
        "--set",
        f'data.source="{corpus}"',
        "--set",
        "train.epochs=1",
        "--set",
        f'train.data_service="{service["address"]}"',
        "--out",
        str(run),
        "--progress",
        "0",
    )
    assert code == 0, err[-2000:]
    rows = history(run)
    assert len(rows) == 1 and rows[0]["examples"] == TRAIN_EXAMPLES  # counted in the training step
    assert json.loads(out)["distribution"]["data_service"] == service["address"]
    assert not (run / "data-service").exists()  # the shards go with the finished run


def _spin(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


def test_service_servers_stop_cleanly_on_sigterm_on_a_saturated_cpu(service):
    """Each server stops within its own bound (STOP_SECONDS, as it logs it) and exits 0, while twice
    as many busy processes as cores keep the CPU saturated on purpose. The wait for the exit itself
    only catches a hang: when the signal is delivered and handled on a CPU shared with other test
    workers is the scheduler's business, not the server's."""
    import multiprocessing
    import re

    from keras_seq.pipelines.data_service import STOP_SECONDS

    busy = [multiprocessing.Process(target=_spin, args=(120,), daemon=True) for _ in range(2 * os.cpu_count())]
    for process in busy:
        process.start()
    took = []
    logs = [service["logs"] / name for name in ("dispatcher.err", "worker0.err", "worker1.err")]
    try:
        time.sleep(1.0)
        for process, log in reversed(list(zip(service["processes"], logs))):
            started = time.monotonic()
            process.send_signal(signal.SIGTERM)
            try:
                code = process.wait(timeout=STOP_SECONDS + 60)
            except subprocess.TimeoutExpired:
                pytest.fail(f"{log.stem} still running 70 s after SIGTERM; its log ends: {log.read_text()[-1500:]}")
            assert code == 0, log.read_text()[-1500:]
            took.append(round(time.monotonic() - started, 2))
            stopped = re.findall(r"stopped \(([\d.]+) s\)", log.read_text())
            assert stopped and float(stopped[-1]) <= STOP_SECONDS, log.read_text()[-1500:]
    finally:
        for process in busy:
            process.kill()  # not SIGTERM: forked from this test process, they may carry its CLI handler
    print(f"\ndata service on a saturated CPU: workers and dispatcher exited 0 in {took} s after SIGTERM")


def test_an_unreachable_dispatcher_fails_in_bounded_time():
    from keras_seq.pipelines.data_service import check_dispatcher

    started = time.monotonic()
    with pytest.raises(ConnectionError, match=r"grpc://127\.0\.0\.1:\d+ did not answer within 1 s"):
        check_dispatcher(f"grpc://127.0.0.1:{free_port()}", 1.0)
    assert time.monotonic() - started < 10


MIRRORED = """
import json, sys
import numpy as np, tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras
from keras_seq._keras_compat import distributed_fit
from keras_seq.pipelines.distribute import replica_batches

distributed_fit()
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
rng = np.random.default_rng(0)
ids = rng.integers(1, 30, (61, 7)); ids[:, 5:] *= rng.integers(0, 2, (61, 1))  # some rows end early
labels = (ids[:, 0] > 15).astype("int64")
batches = tf.data.Dataset.from_tensor_slices((ids, labels)).batch(25)  # 25, 25, 11 rows
seen = []
for inputs, targets, weights in replica_batches(batches, strategy, "rows"):
    seen.append([len(strategy.experimental_local_results(inputs)),
                 [w.numpy().tolist() for w in strategy.experimental_local_results(weights)]])

def model():
    keras.utils.set_random_seed(0)
    m = keras.Sequential([keras.Input((None,), dtype="int32"), keras.layers.Embedding(30, 8, mask_zero=True),
                          keras.layers.GRU(8), keras.layers.Dense(2, activation="softmax")])
    m.compile(keras.optimizers.SGD(0.5), "sparse_categorical_crossentropy")
    return m

alone = model()
alone.fit(batches, epochs=3, verbose=0)
with strategy.scope():
    together = model()
# One stream for all epochs, as `train` builds it (Keras keeps a distributed dataset's iterator across epochs).
together.fit(replica_batches(batches.repeat(3), strategy, "rows"), epochs=3, steps_per_epoch=3, verbose=0)
difference = max(float(np.abs(a - b).max()) for a, b in zip(alone.get_weights(), together.get_weights()))
print(json.dumps({"seen": seen, "difference": difference}))
"""


def test_mirrored_replicas_take_the_single_process_step():
    """MirroredStrategy over two logical CPUs (the path of a machine's GPUs): each batch is split
    between the replicas with weights R * n_r / N, and three epochs of SGD end at the weights
    one process reaches on the same batches."""
    result = run_python(MIRRORED, timeout=LIMIT_S)
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    weights = [[[round(w, 5) for w in replica] for replica in s[1]] for s in out["seen"]]
    assert weights == [[[round(2 * 13 / 25, 5)] * 13, [round(2 * 12 / 25, 5)] * 12]] * 2 + [
        [[round(2 * 6 / 11, 5)] * 6, [round(2 * 5 / 11, 5)] * 5]
    ]
    assert out["difference"] < 1e-5
