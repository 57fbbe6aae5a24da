"""Drills on training and export: SIGKILL at random points, then the rerun; every
damaged run-directory file; the export killed mid-way (slow; bounded in time)."""

from __future__ import annotations

import csv
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from keras_seq.export.checks.processes import find_debris
from tests.helpers import cli_in_process, fresh_copy, run_cli

pytestmark = pytest.mark.slow
WORDS = "the a movie film plot actor scene good bad great awful boring fun long short music story".split()
# Random labels on one CSV: validation loss bottoms out early, so the kept epoch, the
# learning-rate decay and early stopping all depend on the state a resume must restore.
SETTINGS = ["train.epochs=8", "train.lr_decay=0.5", "train.lr_patience=1", "train.patience=3", "train.seed=1"]


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
    out = tmp_path_factory.mktemp("uninterrupted") / "run"
    result = run_cli(*_train_args(random_csv, out))
    assert result.returncode == 0, result.stderr[-2000:]
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


def _history(out: Path) -> list[dict]:
    with (out / "history.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_sigkill_at_three_points_then_rerun_equals_an_uninterrupted_run(random_csv, uninterrupted, tmp_path):
    out = tmp_path / "run"
    args = _train_args(random_csv, out)
    rng = random.Random(14)
    kills = [
        ("after epoch 1, within the next epoch", lambda: _state_epoch(out) >= 1, rng.uniform(0.0, 0.8)),
        ("after epoch 2, within the next epoch", lambda: _state_epoch(out) >= 2, rng.uniform(0.0, 0.8)),
        ("after fit returned, before metrics.json", lambda: (out / "model.keras").exists(), 0.0),
    ]
    landed = []
    for where, ready, delay in kills:
        report = _kill_when(args, ready, delay)
        assert not report["finished before the kill"], where
        assert not (out / "metrics.json").exists(), where  # the run was killed unfinished
        landed.append((where, _state_epoch(out)))
    result = run_cli(*args)
    assert result.returncode == 0, result.stderr[-2000:]

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
        f"vs {want['test']['accuracy']:.3f}; train_seconds {got['train_seconds']} over 4 processes"
    )
    # a single file is split three ways: random labels score chance on the held-out test split
    assert got["data_split"]["fractions"] == {"train": 0.8, "validation": 0.1, "test": 0.1}
    assert got["test"]["accuracy"] < 0.7


def test_finished_run_is_refused_and_a_torn_backup_is_named(random_csv, uninterrupted, tmp_path):
    result = run_cli(*_train_args(random_csv, uninterrupted))
    assert result.returncode == 2 and "holds a finished run" in result.stderr and "--overwrite" in result.stderr
    # an unfinished run resumes only with its own config
    out = tmp_path / "run"
    _kill_when(_train_args(random_csv, out), lambda: _state_epoch(out) >= 1, 0.0)
    other = run_cli(*_train_args(random_csv, out), "--set", "train.learning_rate=0.5")
    assert other.returncode == 2 and "another config" in other.stderr, other.stderr[-500:]
    weights = out / "backup" / json.loads((out / "backup" / "state.json").read_text())["weights"]
    weights.write_bytes(weights.read_bytes()[:100])  # damaged behind our back (not by a kill: writes are atomic)
    torn = run_cli(*_train_args(random_csv, out))
    assert torn.returncode == 2 and weights.name in torn.stderr and "Traceback" not in torn.stderr
    assert len(torn.stderr.strip().splitlines()) == 1, torn.stderr


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
    result = run_cli(*args, "--no-verify")  # (the cleanup comes first; verifying again adds nothing here)
    assert result.returncode == 0, result.stderr[-2000:]
    left = find_debris(out, out / "savedmodel" / "drill")  # (other tests' live exports do not count)
    assert not left, left
    print(f"\nexport kill drill: {len(debris)} staging folder(s) after the kill, none after the next export")
