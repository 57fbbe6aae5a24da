"""What tests share besides fixtures: the repository's paths, fresh-process runners, a loopback
server, a trained-and-exported demo model. Imported as `tests.helpers`."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DATA_DIR = Path(os.environ.get("KERAS_SEQ_DATA", REPO.parent / "shared" / "data"))


def run_python(code: str, *args: str, timeout: int = 300, env: dict | None = None) -> subprocess.CompletedProcess:
    """Runs `code` in a fresh interpreter (nothing imported from this process)."""
    full_env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=timeout, env=full_env, cwd=REPO
    )


def run_cli(*args: str, timeout: int = 600, **kwargs) -> subprocess.CompletedProcess:
    """`keras-seq ARGS` in a fresh process, in the environment a user has (no TF log level set)."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    return subprocess.run(
        [sys.executable, "-m", "keras_seq.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        **kwargs,
    )


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def served(export_dir, *options: str, log=None, name: str = "reviews"):
    """`keras-seq serve EXPORT_DIR OPTIONS` (no EXPORT_DIR when None: a --model-config-file in OPTIONS)
    on a free loopback port, ready; yields (port, process).
    Its output goes to `log` (a path), so a test can read what the server logged."""
    import time

    from keras_seq.serving.client import RestClient, ServingError

    port = free_port()
    sink = open(log, "wb") if log else subprocess.DEVNULL
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "keras_seq.cli",
            "serve",
            *([str(export_dir)] if export_dir else []),
            "--port",
            str(port),
        ]
        + list(options),
        stdout=sink,
        stderr=subprocess.STDOUT,
    )
    try:
        client = RestClient(f"http://127.0.0.1:{port}", name, retries=0, timeout=5)
        for _ in range(240):
            if process.poll() is not None:
                pytest.fail(f"the server exited with {process.returncode}")
            try:
                if client.status().get("ready"):
                    break
            except (ServingError, OSError):
                time.sleep(0.25)
        else:
            pytest.fail("the server did not become ready in 60 s")
        yield port, process
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        if log:
            sink.close()


def train_demo(root: Path) -> Path:
    """The demo classifier trained one epoch on a small generated corpus: ROOT/data, ROOT/run."""
    from keras_seq.pipelines.config import load_config
    from keras_seq.pipelines.synthetic import write_corpus
    from keras_seq.pipelines.train import train_run

    corpus = write_corpus(root / "data", {"train": 600, "dev": 100, "test": 100})
    train_run(load_config("demo", [f'data.source="{corpus}"', "train.epochs=1"]), root / "run", verbose=0)
    return root / "run"


def train_and_export(root: Path, name: str = "reviews") -> Path:
    """`train_demo`, exported (unverified) as ROOT/export; for tests that need any real export."""
    from keras_seq.export.exporter import export_run

    export_run(train_demo(root), root / "export", name=name, verify=False)
    return root / "export"


def cli_in_process(*args: str) -> tuple[int, str, str]:
    """`keras-seq ARGS` in this process: (exit status, stdout, stderr)."""
    import io

    from keras_seq.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue(), err.getvalue()


def fresh_copy(source: Path, target: Path) -> Path:
    """TARGET as a new copy of the folder SOURCE (drills damage the copy)."""
    import shutil

    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target)
    return target
