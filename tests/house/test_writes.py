"""What every writer shares: one writer per directory (an OS lock), and atomic replaces that are
durable and refuse a full disk with the old file whole (a file-size limit stands in for the disk:
the same EFBIG/ENOSPC path, without needing a small file system)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from keras_seq.contracts.files import StorageFullError, replace_atomically, storage_full, write_json
from keras_seq.contracts.writer_lock import HOLDER_FILE, DirectoryBusyError, one_writer

HOLD = """
import sys, time
from keras_seq.contracts.writer_lock import one_writer
with one_writer(sys.argv[1], "keras-seq train demo"):
    print("holding", flush=True)
    time.sleep(60)
"""


def test_a_second_writer_is_refused_at_once_naming_the_holder(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path / "run")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "holding"
        with pytest.raises(DirectoryBusyError) as refused, one_writer(tmp_path / "run", "keras-seq train"):
            pytest.fail("two writers held one directory")
        message = str(refused.value)
        assert f"process {holder.pid}" in message and "`keras-seq train demo`" in message and "\n" not in message
        assert isinstance(refused.value, FileExistsError)  # the CLI's exit status 2
    finally:
        holder.send_signal(signal.SIGKILL)  # a crash: the kernel releases the lock with the process
        holder.wait()
    with one_writer(tmp_path / "run", "keras-seq train") as directory:
        assert json.loads((directory / HOLDER_FILE).read_text())["pid"] == os.getpid()
    assert not (tmp_path / "run" / HOLDER_FILE).exists()


WRITE_UNDER_LIMIT = """
import resource, signal, sys
from pathlib import Path
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
from keras_seq.contracts.files import StorageFullError, write_json
try:
    write_json(Path(sys.argv[1]), {"big": "x" * 100_000})
except StorageFullError as error:
    print(error)
    sys.exit(4)
"""


def test_a_full_disk_keeps_the_previous_file_whole(tmp_path):
    state = write_json(tmp_path / "state.json", {"epoch": 3})
    result = subprocess.run(
        [sys.executable, "-c", WRITE_UNDER_LIMIT, str(state)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 4, result.stderr[-2000:]
    assert result.stdout.strip() == (
        f"{state}: could not be written (the disk is full or a file-size limit was reached); the previous "
        "version is kept -- free space and run the command again"
    )
    assert json.loads(state.read_text()) == {"epoch": 3}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]  # no temporary file left behind


def test_replace_atomically_names_only_storage_errors(tmp_path):
    def fail(path):
        raise OSError(28, "No space left on device")

    with pytest.raises(StorageFullError, match="could not be written"):
        replace_atomically(tmp_path / "a.bin", fail)
    with pytest.raises(ZeroDivisionError):
        replace_atomically(tmp_path / "a.bin", lambda path: 1 / 0)
    assert storage_full(RuntimeError("Unable to write (errno = 27, error message = 'File too large')"))
    assert not storage_full(ValueError("bad value"))
    assert not list(tmp_path.iterdir())


def test_a_folder_replaces_atomically_too(tmp_path):
    def write(path):
        path.mkdir()
        (path / "weights.bin").write_bytes(b"\0" * 10)

    replace_atomically(tmp_path / "backup", write)
    assert (tmp_path / "backup" / "weights.bin").stat().st_size == 10
