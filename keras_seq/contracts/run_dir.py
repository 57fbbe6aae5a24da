"""The run directory that ``keras-seq train`` (`keras_seq.pipelines.train_run`) writes.

RUN_DIR/
  model.keras        the kept epoch's model (for language models: the stateless twin)
  config.toml        the resolved config (every key)
  tokenizer.json     the tokenizer contract, and the vocabulary files it names
  labels.txt         class names by id (classify) -- or tags.txt (tag); the task names its file
  metrics.json       test / validation metrics, training time, parameters
  history.csv        one row per epoch; curves.png its plot; logs/ TensorBoard
  backup/            BackupAndRestore's state while the run is unfinished
"""
from __future__ import annotations

import tomllib
from pathlib import Path

from keras_seq.contracts.errors import ContractError, Directory, file_in
from keras_seq.contracts.tokenizer import TOKENIZER_FILE, TokenizerSpec

MODEL_FILE = "model.keras"
CONFIG_FILE = "config.toml"
METRICS_FILE = "metrics.json"
HISTORY_FILE = "history.csv"
CURVES_FILE = "curves.png"
LOGS_DIR = "logs"
BACKUP_DIR = "backup"
BEST_WEIGHTS_FILE = "best.weights.h5"
LABELS_FILE = "labels.txt"
TAGS_FILE = "tags.txt"


class RunDirectory(Directory):
    """The paths of one run directory, and its validating readers."""

    model = file_in(MODEL_FILE)
    config_file = file_in(CONFIG_FILE)
    metrics_file = file_in(METRICS_FILE)
    history = file_in(HISTORY_FILE)
    curves = file_in(CURVES_FILE)
    logs = file_in(LOGS_DIR)
    backup = file_in(BACKUP_DIR)
    best_weights = file_in(BEST_WEIGHTS_FILE)
    tokenizer_file = file_in(TOKENIZER_FILE)

    def check(self) -> "RunDirectory":
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
