"""Drills on training and export: SIGKILL at random points, then the rerun; every
damaged run-directory file; the export killed mid-way; two writers into one directory; a
full disk during a checkpoint and an export (slow; bounded in time)."""

from __future__ import annotations

import csv
import json
import os
import random
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from keras_seq.contracts.writer_lock import HOLDER_FILE
from keras_seq.export.checks.processes import find_debris
from tests.helpers import cli_in_process, fresh_copy, run_cli

pytestmark = pytest.mark.slow
WORDS = "the a movie film plot actor scene good bad great awful boring fun long short music story".split()
# Random labels on one CSV: validation loss bottoms out early, so the kept epoch, the
# learning-rate decay and early stopping all depend on the state a resume must restore; so do the
# weights' moving average (validated) and the training's own weights (the backup keeps both).
SETTINGS = [
    "train.epochs=8",
    "train.lr_decay=0.5",
    "train.lr_patience=1",
    "train.patience=3",
    "train.seed=1",
    "train.ema_momentum=0.9",
]


@pytest.fixture(scope="module")
def random_csv(tmp_path_factory) -> Path:
    rng = random.Random(0)
    path = tmp_path_factory.mktemp("drill-data") / "random.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        for i in range(600):
            writer.writerow(
                [" ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 20))) + f" r{i}", rng.choice(["pos", "neg"])]
            )
    return path


def _train_args(source: Path, out: Path) -> list[str]:
    args = ["train", "demo", "--out", str(out), "--progress", "0", "--set", f'data.source="{source}"']
    return args + [item for s in SETTINGS for item in ("--set", s)]


@pytest.fixture(scope="module")
def uninterrupted(random_csv, tmp_path_factory) -> Path:
    # (in this process: the reference run is the same command; the drills' fresh processes are the runs they kill)
    out = tmp_path_factory.mktemp("uninterrupted") / "run"
    code, _, err = cli_in_process(*_train_args(random_csv, out))
    assert code == 0, err[-2000:]
    return out


def _state_epoch(out: Path) -> int:
    try:
        return json.loads((out / "backup" / "state.json").read_text())["epoch"]
    except (FileNotFoundError, json.JSONDecodeError):
        return 0


def _kill_when(args: list[str], ready, delay: float) -> dict:
    """Starts `keras-seq ARGS`, waits until `ready()`, sleeps `delay`, SIGKILLs it."""
    process = subprocess.Popen(
        [sys.executable, "-m", "keras_seq.cli", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None and not ready():
        time.sleep(0.01)
    time.sleep(delay)
    finished_first = process.poll() is not None
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    return {"finished before the kill": finished_first}


@pytest.fixture(scope="module")
def killed_in_epoch_two(random_csv, tmp_path_factory) -> tuple[Path, int]:
    """A run SIGKILLed within its second epoch (after the first backup): (its folder, the backed-up
    epoch). Tests resume or damage copies of it (`fresh_copy`)."""
    out = tmp_path_factory.mktemp("killed") / "run"
    report = _kill_when(_train_args(random_csv, out), lambda: _state_epoch(out) >= 1, random.Random(14).uniform(0, 0.8))
    assert not report["finished before the kill"] and not (out / "metrics.json").exists()
    return out, _state_epoch(out)


def _history(out: Path) -> list[dict]:
    with (out / "history.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_sigkill_at_two_points_then_rerun_equals_an_uninterrupted_run(
    random_csv, uninterrupted, killed_in_epoch_two, tmp_path
):
    """Killed within epoch 2; resumed and killed again after fit returned, before metrics.json; the
    rerun ends where the uninterrupted run ended (a resumed run's own backups are what the second resume reads)."""
    first, epoch = killed_in_epoch_two
    out = fresh_copy(first, tmp_path / "run")
    args = _train_args(random_csv, out)
    landed = [("after epoch 1, within the next epoch", epoch)]
    report = _kill_when(args, lambda: (out / "model.keras").exists(), 0.0)
    assert not report["finished before the kill"] and not (out / "metrics.json").exists()
    landed.append(("after fit returned, before metrics.json", _state_epoch(out)))
    code, _, err = cli_in_process(*args)  # (the last rerun in this process: a fresh one adds an import, not a check)
    assert code == 0, err[-2000:]

    reference, resumed = _history(uninterrupted), _history(out)
    assert [int(r["epoch"]) for r in resumed] == list(range(len(reference)))  # each epoch once
    for want, got in zip(reference, resumed):
        for key in ("loss", "val_loss", "learning_rate"):
            assert float(got[key]) == pytest.approx(float(want[key]), rel=0.01), (want["epoch"], key)
    want = json.loads((uninterrupted / "metrics.json").read_text())
    got = json.loads((out / "metrics.json").read_text())
    assert got["kept_epoch"] == want["kept_epoch"] and got["epochs_run"] == want["epochs_run"]
    assert got["test"]["accuracy"] == pytest.approx(want["test"]["accuracy"], abs=0.01)
    assert not (out / "backup").exists()
    print(
        f"\nkill drill: kills landed at {landed}; kept epoch {got['kept_epoch']} of {got['epochs_run']} "
        f"(uninterrupted: {want['kept_epoch']} of {want['epochs_run']}); test accuracy {got['test']['accuracy']:.3f} "
        f"vs {want['test']['accuracy']:.3f}; train_seconds {got['train_seconds']} over 3 processes"
    )
    # a single file is split three ways: random labels score chance on the held-out test split
    assert got["data_split"]["fractions"] == {"train": 0.8, "validation": 0.1, "test": 0.1}
    assert got["test"]["accuracy"] < 0.7


def test_finished_run_is_refused_and_a_torn_backup_is_named(random_csv, uninterrupted, killed_in_epoch_two, tmp_path):
    # (the refusals run in this process: each comes before any training, and a fresh process costs seconds)
    code, _, err = cli_in_process(*_train_args(random_csv, uninterrupted))
    assert code == 2 and "holds a finished run" in err and "--overwrite" in err
    # an unfinished run resumes only with its own config
    out = fresh_copy(killed_in_epoch_two[0], tmp_path / "run")
    code, _, err = cli_in_process(*_train_args(random_csv, out), "--set", "train.learning_rate=0.5")
    assert code == 2 and "another config" in err, err[-500:]
    weights = out / "backup" / json.loads((out / "backup" / "state.json").read_text())["weights"]
    weights.write_bytes(weights.read_bytes()[:100])  # damaged behind our back (not by a kill: writes are atomic)
    code, _, err = cli_in_process(*_train_args(random_csv, out))
    assert code == 2 and weights.name in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err


def test_every_damaged_run_file_is_named(uninterrupted, tmp_path):
    """A damaged file gives one line naming it and a non-zero exit -- or, where the damage
    does not matter (bytes no reader uses), exactly the undamaged answer."""
    files = ["model.keras", "config.toml", "tokenizer.json", "vocab.txt", "labels.txt"]
    counts = {"cases": 0, "named": 0, "unaffected": 0, "tracebacks": 0}
    _, before, _ = cli_in_process("evaluate", str(uninterrupted), "--json")
    for name in files:
        for how in ("truncated", "emptied", "wrong field"):
            run = fresh_copy(uninterrupted, tmp_path / "run")
            path = run / name
            data = path.read_bytes()
            if how == "truncated":
                path.write_bytes(data[: len(data) // 2])
            elif how == "emptied":
                path.write_bytes(b"")
            elif name == "tokenizer.json":
                path.write_text(json.dumps({**json.loads(data), "level": "sentence"}), encoding="utf-8")
            elif name == "config.toml":
                path.write_text(data.decode().replace('task = "classify"', "task = 5"), encoding="utf-8")
            elif name in ("vocab.txt", "labels.txt"):
                path.write_text("\n".join(["dup", "dup"]) + "\n", encoding="utf-8")
            else:
                path.write_bytes(data[:30] + b"\x00" * 64 + data[94:])
            code, out, err = cli_in_process("evaluate", str(run), "--json")
            counts["cases"] += 1
            counts["tracebacks"] += "Traceback" in err
            if code == 0:
                assert out == before, (name, how, "a silently different answer")
                counts["unaffected"] += 1
                continue
            lines = [line for line in err.strip().splitlines() if line.strip()]
            assert len(lines) == 1 and name in lines[0], (name, how, err[-800:])
            counts["named"] += 1
    print(f"\nbad run files: {counts}")
    assert counts["tracebacks"] == 0


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if text.encode() in (proc / "cmdline").read_bytes():
                    found.append(int(proc.name))
            except OSError:
                continue
    return found


def test_export_killed_mid_way_leaves_nothing_after_the_next(uninterrupted, tmp_path):
    out = tmp_path / "export"
    args = ["export", str(uninterrupted), "--out", str(out), "--name", "drill"]
    # kill while the fresh-process verification runs: staging folders and a child process exist
    _kill_when(
        args,
        lambda: (
            any(p.name.startswith(".1.staging-") for p in (out / "savedmodel" / "drill").glob(".*"))
            and _processes_mentioning(".1.staging-")
        ),
        0.5,
    )
    time.sleep(1.0)
    assert not _processes_mentioning(str(out)), "a child of the killed export still runs"
    debris = [p for p in (out / "savedmodel" / "drill").iterdir() if p.name.startswith(".")]
    assert debris, "the kill came too late to leave debris"
    # (in this process; the cleanup comes first, and verifying again adds nothing here)
    code, _, err = cli_in_process(*args, "--no-verify")
    assert code == 0, err[-2000:]
    left = find_debris(out, out / "savedmodel" / "drill")  # (other tests' live exports do not count)
    assert not left, left
    print(f"\nexport kill drill: {len(debris)} staging folder(s) after the kill, none after the next export")


# -- one writer per directory, and a full disk (a file-size limit stands in for it) -------------------
FULL_AT = 16 * 1024  # bytes: past the JSON files, short of the weights, the SavedModel and the graph


def _holder_appears(out: Path) -> bool:
    return (out / HOLDER_FILE).exists()


def _start(args: list[str], **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "keras_seq.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def _limit_file_size() -> None:  # in the child, before exec: its files stop growing at FULL_AT bytes
    resource.setrlimit(resource.RLIMIT_FSIZE, (FULL_AT, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))


def _wait_for(condition, process: subprocess.Popen, what: str, seconds: float = 300) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert process.poll() is None, f"{what}: the command ended first ({process.stderr.read()[-2000:]})"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_a_second_trainer_is_refused_and_a_full_disk_loses_no_epoch(random_csv, uninterrupted, tmp_path):
    out = tmp_path / "run"
    args = _train_args(random_csv, out)
    first = _start(args)
    _wait_for(lambda: _holder_appears(out), first, "the first trainer's lock")
    code, _, err = cli_in_process(*args)  # (in this process: the lock is per directory, not per process tree)
    assert code == 2, err[-2000:]
    refusal = err.strip().splitlines()[-1]
    assert f"process {first.pid}" in refusal and "is writing it (one writer per directory)" in refusal, refusal
    # the disk fills during the first trainer's next backup
    _wait_for(lambda: _state_epoch(out) >= 1, first, "the first backup")
    resource.prlimit(first.pid, resource.RLIMIT_FSIZE, (FULL_AT, resource.RLIM_INFINITY))
    _, stderr = first.communicate(timeout=300)
    assert first.returncode == 4, stderr[-2000:]
    assert "could not be written (the disk is full or a file-size limit was reached" in stderr.splitlines()[-1]
    assert "the previous version is kept" in stderr.splitlines()[-1]
    kept = _state_epoch(out)
    assert kept >= 1 and not (out / "metrics.json").exists()  # the last whole backup, readable
    code, _, err = cli_in_process(*args)  # space is back (the resume in this process)
    assert code == 0, err[-2000:]
    assert [r["epoch"] for r in _history(out)] == [r["epoch"] for r in _history(uninterrupted)]
    for want, got in zip(_history(uninterrupted), _history(out)):
        assert float(got["loss"]) == pytest.approx(float(want["loss"]), rel=0.01), want["epoch"]
    print(f"\nwriter drill: the second trainer exited 2; the full disk stopped the first after epoch {kept} (exit 4)")


def test_a_second_exporter_is_refused_and_a_full_disk_keeps_the_export(uninterrupted, tmp_path):
    from keras_seq.contracts import ExportDirectory
    from keras_seq.serving.predictor import OnnxPredictor

    out = tmp_path / "export"
    args = ["export", str(uninterrupted), "--out", str(out), "--name", "drill", "--no-verify"]
    both = [_start(args), _start(args)]  # two exports into one directory at once: exactly one runs
    results = sorted((p.wait(timeout=300), p.stderr.read()) for p in both)
    assert [code for code, _ in results] == [0, 2], results
    assert "is writing it (one writer per directory)" in results[1][1].strip().splitlines()[-1], results[1][1]
    before = OnnxPredictor(out).predict(["a good film"])
    full = run_cli(*args, preexec_fn=_limit_file_size)
    assert full.returncode == 4, full.stderr[-2000:]
    assert full.stderr.strip().splitlines()[-1] == (
        f"keras-seq export: error: {out}: the export could not be written (the disk is full or a file-size limit "
        "was reached); the previous export is kept -- free space and export again"
    )
    layout = ExportDirectory(out)
    assert layout.info()["version"] == 1 and layout.savedmodel().name == "1"  # checksums hold
    assert sorted(p.name for p in (out / "savedmodel" / "drill").iterdir()) == ["1"]  # no debris, no half version
    assert OnnxPredictor(out).predict(["a good film"]) == before
    code, again, err = cli_in_process(*args)  # space is back (in this process: exports run in the caller's)
    assert code == 0, err[-2000:]
    assert json.loads(again)["savedmodel"].endswith("drill/2") and ExportDirectory(out).info()["version"] == 2
    print("\nexport writer drill: the second exporter exited 2; the full disk left version 1 whole (exit 4)")
