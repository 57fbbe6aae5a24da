"""Resumable training: the backup a run keeps until its metrics.json is written.

Keras' `BackupAndRestore` keeps the weights and the epoch, but not what the other
callbacks know: a resumed run's `ModelCheckpoint` forgets the best score so far
(and keeps a worse epoch), `EarlyStopping` its patience count, and
`ReduceLROnPlateau` its plateau count; its weight file is written in place (a
kill during the write blocks every rerun with an HDF5 error); and it is deleted
when `fit` returns, before the run is evaluated. `RunBackup` keeps all of that
(see `keras_seq.contracts.run_dir` for the files), writing each file under a
temporary name and renaming it, and is deleted by `train_run` only after
metrics.json is written.
"""

from __future__ import annotations

import csv
import logging
import math
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import keras
import numpy as np

from keras_seq.contracts import ContractError, RunDirectory
from keras_seq.contracts.files import ensure_room, fsync_path, read_json_object, replace_atomically, write_json
from keras_seq.contracts.run_dir import BACKUP_STATE_FILE

logger = logging.getLogger(__name__)

# The attributes that carry a callback's best-so-far state from epoch to epoch.
CALLBACK_STATE = {
    keras.callbacks.ModelCheckpoint: ("best",),
    keras.callbacks.EarlyStopping: ("wait", "best", "best_epoch", "stopped_epoch"),
    keras.callbacks.ReduceLROnPlateau: ("wait", "best", "cooldown_counter"),
}


def _plain(value):
    """A JSON-safe copy of a callback attribute (NumPy scalars -> Python numbers)."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    return float(value)


@dataclass
class BackupState:
    """backup/state.json: what the run had done when it was last backed up."""

    epoch: int = 0  # epochs finished
    weights: str | None = None  # the file (in backup/) of the model and optimizer after `epoch`
    best_epoch: int | None = None  # the kept epoch so far (1-based), its weights in `best_file(best_epoch)`
    stopped: bool = False  # early stopping or the time limit ended training
    train_seconds: float = 0.0  # over every process that trained this run
    callbacks: dict = field(default_factory=dict)  # class name -> {attribute: value}

    @staticmethod
    def read(path: Path) -> BackupState | None:
        if not path.exists():
            return None
        data = read_json_object(path, "the training backup's state")
        try:
            return BackupState(**data)
        except TypeError as error:
            raise ContractError(
                f"{path}: not a training backup state ({error}); delete {path.parent} to train from the start"
            ) from None


def best_file(epoch: int) -> str:
    return f"best-{epoch:03d}.weights.h5"


class RunBackup(keras.callbacks.Callback):
    """Backs up the run at each epoch end and restores it at the start of `fit`.

    Put it last in the callback list: it records the state the other callbacks
    reached in the same epoch, and restores theirs after their own
    `on_train_begin` has reset it. `checkpoint` must save to `best_file(epoch)`
    names in `directory` (`checkpoint_for`)."""

    def __init__(
        self,
        directory: Path,
        state: BackupState | None,
        callbacks: list,
        started: float,
        restore_from: Path | None = None,
    ) -> None:
        super().__init__()
        self.directory = Path(directory)
        # Where the state's weights are: `directory`, or (a worker that is not the chief) the chief's backup.
        self.restore_from = Path(restore_from) if restore_from is not None else self.directory
        self.state = state or BackupState()
        self.tracked = [c for c in callbacks if type(c) in CALLBACK_STATE]
        self.checkpoint = next(c for c in callbacks if isinstance(c, keras.callbacks.ModelCheckpoint))
        self.started, self.earlier_seconds = started, self.state.train_seconds
        self._best_before = None

    def on_train_begin(self, logs=None):
        if self.state.weights:
            path = self.restore_from / self.state.weights
            if self.model.optimizer is not None and not self.model.optimizer.built:
                self.model.optimizer.build(self.model.trainable_variables)
            try:
                self.model.load_weights(str(path))
            except Exception as error:  # h5py / Keras say little about which file
                detail = " ".join(str(error).split())  # h5py's messages span lines
                raise ContractError(
                    f"{path}: cannot restore the training backup ({type(error).__name__}: "
                    f"{detail}); delete {self.restore_from} to train from the start"
                ) from None
            logger.info("resumed after epoch %d (%.0f s trained before)", self.state.epoch, self.earlier_seconds)
        for callback in self.tracked:
            for name, value in self.state.callbacks.get(type(callback).__name__, {}).items():
                setattr(callback, name, value)

    def on_epoch_begin(self, epoch, logs=None):
        self._best_before = self.checkpoint.best

    def on_epoch_end(self, epoch, logs=None):
        done = epoch + 1
        weights = f"epoch-{done:03d}.weights.h5"
        ensure_room(self.directory / weights, weights_bytes(self.model))
        replace_atomically(self.directory / weights, lambda tmp: self.model.save_weights(str(tmp)))
        best_epoch = done if self.checkpoint.best != self._best_before else self.state.best_epoch
        if best_epoch == done and (self.directory / best_file(done)).exists():
            fsync_path(self.directory / best_file(done))  # Keras wrote it; durable before the state names it
        self.state = BackupState(
            epoch=done,
            weights=weights,
            best_epoch=best_epoch,
            stopped=bool(self.model.stop_training),
            train_seconds=round(self.earlier_seconds + time.perf_counter() - self.started, 3),
            callbacks={
                type(c).__name__: {name: _plain(getattr(c, name)) for name in CALLBACK_STATE[type(c)]}
                for c in self.tracked
            },
        )
        write_json(self.directory / BACKUP_STATE_FILE, asdict(self.state))
        keep = {weights, best_file(best_epoch) if best_epoch else None}
        remove_stale(self.directory, keep)


def remove_stale(directory: Path, keep: set) -> None:
    """Weight files of epochs a state no longer names (a kill may leave one behind)."""
    for path in directory.glob("*.weights.h5"):
        if path.name not in keep:
            path.unlink(missing_ok=True)


def weights_bytes(model: keras.Model) -> int:
    """About how many bytes a weights file of `model` takes (its variables and its optimizer's, and
    room for the HDF5 layout): what `ensure_room` checks before h5py writes."""
    variables = list(model.variables) + (list(model.optimizer.variables) if model.optimizer is not None else [])
    return sum(int(np.prod(v.shape)) * np.dtype(v.dtype).itemsize for v in variables) + 64 * 1024


class RoomCheck(keras.callbacks.Callback):
    """Before the epoch's weight files are written (put it ahead of the checkpoint): room on the disk
    for one (`ensure_room`), or a clear error instead of h5py's crash."""

    def __init__(self, directory: Path) -> None:
        super().__init__()
        self.directory = Path(directory)

    def on_epoch_end(self, epoch, logs=None):
        ensure_room(self.directory / best_file(epoch + 1), weights_bytes(self.model))


def checkpoint_for(directory: Path, monitor: str, mode: str) -> keras.callbacks.ModelCheckpoint:
    return keras.callbacks.ModelCheckpoint(
        str(Path(directory) / "best-{epoch:03d}.weights.h5"),
        monitor=monitor,
        mode=mode,
        save_best_only=True,
        save_weights_only=True,
    )


def open_backup(run: RunDirectory, config_text: str, overwrite: bool) -> BackupState | None:
    """Checks the run directory before training; returns the backup to resume from, if any.

    A finished run (metrics.json) is refused unless `overwrite`, which removes the
    run's own files first. An unfinished run resumes only with the config it
    was started with."""
    run.check_can_train(config_text, overwrite)
    if overwrite:
        for name in RunDirectory.RUN_FILES:
            path = run.file(name)
            shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    state = BackupState.read(run.backup_state_file)
    if state is not None:
        remove_stale(run.backup, {state.weights, best_file(state.best_epoch) if state.best_epoch else None})
    return state


def history_rows(path: Path, epochs: int | None = None) -> list[dict]:
    """history.csv's rows (Keras' CSVLogger), numbers as floats. With `epochs`, the file
    is first cut to the rows of epochs 0 .. epochs-1: a kill between the row and the
    backup would otherwise repeat that epoch's row when the run resumes."""
    if not path.exists():
        return []
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if epochs is not None:
        kept = [row for row in rows if int(row["epoch"]) < epochs]
        if len(kept) != len(rows):
            fields = list(rows[0]) if rows else []

            def write(tmp):
                with tmp.open("w", newline="", encoding="utf-8") as handle:
                    writer = csv.DictWriter(handle, fieldnames=fields)
                    writer.writeheader()
                    writer.writerows(kept)

            replace_atomically(path, write)
        rows = kept
    return [{k: (float(v) if v not in ("", None) else math.nan) for k, v in row.items()} for row in rows]


def history_columns(rows: list[dict]) -> dict[str, list[float]]:
    """Rows -> {metric: one value per epoch}, the shape of Keras' History.history."""
    keys = [k for k in (rows[0] if rows else {}) if k != "epoch"]
    return {k: [row[k] for row in rows] for k in keys}
