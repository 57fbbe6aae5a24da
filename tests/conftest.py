"""Fixtures and the order the two xdist workers take the test files in; helpers are `tests.helpers`."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402

from tests.helpers import DATA_DIR  # noqa: E402

# the shipped configs read ${KERAS_SEQ_DATA}/...; the commands tests start inherit it
os.environ.setdefault("KERAS_SEQ_DATA", str(DATA_DIR))

#: seconds each test file took in the last `make test-durations` run (tests/durations.json)
DURATIONS = Path(__file__).with_name("durations.json")


@pytest.fixture(scope="session")
def demo_export(tmp_path_factory, worker_id) -> Path:
    """The demo classifier trained and exported once per test run (`train_and_export`; the xdist
    workers share it), read by the files that only read an export; a test that changes one works
    on a copy (`fresh_copy`)."""
    from tests.helpers import train_and_export

    with _made_once(tmp_path_factory, worker_id, "demo-export") as (root, missing):
        if missing:
            train_and_export(root)
    return root / "export"


@contextlib.contextmanager
def _made_once(tmp_path_factory, worker_id: str, name: str):
    """(folder, whether it still has to be made) for something the xdist workers of this run make
    once between them: the first to get here makes it, holding a lock the others wait on. The folder
    is this run's (pytest's base temp), never a previous run's."""
    if worker_id == "master":  # no xdist: this process is the run
        yield tmp_path_factory.mktemp(name), True
        return
    shared = tmp_path_factory.getbasetemp().parent  # .../pytest-N, the run's; each worker's is popen-gwK in it
    folder, done = shared / name, shared / f"{name}.done"
    with open(shared / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if done.exists():
            yield folder, False
            return
        shutil.rmtree(folder, ignore_errors=True)  # a half-made one of a worker that failed making it
        folder.mkdir()
        yield folder, True
        done.touch()


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """`../shared/data` (or $KERAS_SEQ_DATA); skips the test when absent."""
    if not DATA_DIR.is_dir():
        pytest.skip(f"real data folder {DATA_DIR} is missing (set KERAS_SEQ_DATA or lay out ../shared/data)")
    return DATA_DIR


def _file_of(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def pytest_collection_modifyitems(config, items):
    """The longest test files first, by their measured time: `make test` runs with --dist loadfile
    --no-loadscope-reorder, so the workers take whole files in this order, and longest-first keeps
    one worker from finishing long after the others. A file not measured yet goes first: it may be long."""
    seconds = json.loads(DURATIONS.read_text()) if DURATIONS.exists() else {}
    items.sort(key=lambda item: -seconds.get(_file_of(item.nodeid), float("inf")))  # stable: files keep their order


_measured: dict[str, float] = {}


def pytest_runtest_logreport(report):
    """Adds up each file's time (setup, call and teardown of every test; on the controller too)."""
    _measured[_file_of(report.nodeid)] = _measured.get(_file_of(report.nodeid), 0.0) + report.duration


def pytest_sessionfinish(session, exitstatus):
    """`KERAS_SEQ_STORE_DURATIONS=1` (make test-durations) writes the measured times for the order above."""
    if os.environ.get("KERAS_SEQ_STORE_DURATIONS") == "1" and not hasattr(session.config, "workerinput"):
        DURATIONS.write_text(json.dumps({k: round(v, 1) for k, v in sorted(_measured.items())}, indent=1) + "\n")
