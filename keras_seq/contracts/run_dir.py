"""The run directory that ``keras-seq train`` (`keras_seq.pipelines.train_run`) writes.

RUN_DIR/
  model.keras        the kept epoch's model (for language models: the stateless twin)
  config.toml        the resolved config (every key)
  tokenizer.json     the tokenizer contract, and the vocabulary files it names
  labels.txt         class names by id (classify) -- or tags.txt (tag), targets.txt (seq2seq's
                     target vocabulary); the task names its file
  metrics.json       test / validation metrics, training time, parameters
  history.csv        one row per epoch; curves.png its plot; logs/ TensorBoard
  backup/            while the run is unfinished (kept until metrics.json is written):
    state.json         epochs done, training seconds so far, the callbacks' best-so-far state
    epoch-N.weights.h5 model and optimizer after epoch N (the one state.json names)
    best-N.weights.h5  the kept epoch so far

A run directory with metrics.json is finished: `train` refuses it unless told to overwrite.
Every file is written under a temporary name and renamed, so a kill leaves the old file or the new.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from keras_seq.contracts.files import ContractError, Directory, file_in
from keras_seq.contracts.tokenizer import TOKENIZER_FILE, TokenizerSpec

MODEL_FILE = "model.keras"
CONFIG_FILE = "config.toml"
METRICS_FILE = "metrics.json"
HISTORY_FILE = "history.csv"
CURVES_FILE = "curves.png"
LOGS_DIR = "logs"
BACKUP_DIR = "backup"
BACKUP_STATE_FILE = "state.json"
LABELS_FILE = "labels.txt"
TAGS_FILE = "tags.txt"
TARGETS_FILE = "targets.txt"  # seq2seq: the target vocabulary (<PAD>, <UNK>, <BOS>, <EOS>, then tokens)


class RunDirectory(Directory):
    """The paths of one run directory, and its validating readers."""

    model = file_in(MODEL_FILE)
    config_file = file_in(CONFIG_FILE)
    metrics_file = file_in(METRICS_FILE)
    history = file_in(HISTORY_FILE)
    curves = file_in(CURVES_FILE)
    logs = file_in(LOGS_DIR)
    backup = file_in(BACKUP_DIR)
    tokenizer_file = file_in(TOKENIZER_FILE)

    # What `train --overwrite` removes before training again (the run's own files only).
    RUN_FILES = (MODEL_FILE, CONFIG_FILE, METRICS_FILE, HISTORY_FILE, CURVES_FILE, LOGS_DIR, BACKUP_DIR)

    @property
    def finished(self) -> bool:
        return self.metrics_file.exists()

    @property
    def backup_state_file(self) -> Path:
        return self.backup / BACKUP_STATE_FILE

    def check_can_train(self, config_text: str, overwrite: bool = False) -> None:
        """Before training into this folder: a finished run is refused unless `overwrite`;
        an unfinished one (a backup) resumes only with the config it was started with."""
        if overwrite:
            return
        if self.finished:
            raise FileExistsError(
                f"{self.path} holds a finished run ({METRICS_FILE}); pass --overwrite "
                "(overwrite=True) to train it again, or choose another folder"
            )
        if (
            self.backup_state_file.exists()
            and self.config_file.exists()
            and self.config_file.read_text(encoding="utf-8") != config_text
        ):
            raise ValueError(
                f"{self.path} holds an unfinished run with another config ({CONFIG_FILE}); rerun "
                "it with that config to resume, or pass --overwrite to start again"
            )

    def check(self) -> RunDirectory:
        """Raises FileNotFoundError unless this is a finished run directory."""
        if not self.path.is_dir():
            raise FileNotFoundError(f"{self.path}: no run directory there")
        if not self.config_file.exists():
            raise FileNotFoundError(f"{self.path}: not a run directory (no {CONFIG_FILE})")
        if not self.model.exists():
            raise FileNotFoundError(f"{self.path}: holds no {MODEL_FILE} (is the run finished?)")
        return self

    def config(self) -> dict:
        """The resolved config the run was trained with."""
        try:
            config = tomllib.loads(self.config_file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise FileNotFoundError(f"{self.path}: not a run directory (no {CONFIG_FILE})") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
            raise ContractError(f"{self.config_file}: not valid TOML ({error})") from None
        if not isinstance(config.get("task"), str):
            raise ContractError(f"{self.config_file}: missing field 'task'")
        return config

    def tokenizer(self) -> TokenizerSpec:
        return TokenizerSpec.load(self.tokenizer_file)
