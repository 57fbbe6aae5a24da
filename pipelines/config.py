"""Run configuration: TOML files with `--set key=value` overrides.

A config has ``task`` and the tables ``[data]``, ``[model]`` and ``[train]``;
`DEFAULTS` lists every key with its default, so a config names only what it
changes, and an unknown key is an error (a typo must not be ignored).
"""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any

from keras_seq.pipelines.tasks import pipeline_for
from keras_seq.tasks import get_task
from keras_seq.tasks.seq2seq import DECODE_DEFAULTS, check_decode_settings

DEFAULTS: dict[str, Any] = {
    "task": "classify",  # a task of keras_seq.tasks: classify | tag | lm | seq2seq
    "data": {
        "source": "",
        "level": "word",  # word | char
        "lower": True,
        "max_len": None,  # tokens; None = no limit
        "truncate": "tail",  # tail | head
        "vocab_size": 20000,
        "min_count": 1,
        "text_column": "text",
        "label_column": "label",
        "tag_column": "upos",
        "source_column": "source",  # seq2seq tables: the input text ...
        "target_column": "target",  # ... and the whitespace-separated target tokens
        "strip_stress": False,  # seq2seq on CMUdict: drop the phones' stress digits (AH0 -> AH)
        "train_fraction": 0.9,  # lm on one file: first 90% train
        "holdout_every": 10,  # a folder without a validation split: every 10th training example validates
        "split_fractions": [0.8, 0.1, 0.1],  # one file: train / validation / test shares (seeded hash of the text)
        "split_seed": 0,
        "char_features": False,  # tag: also feed each word's characters (character-level encoder)
        "max_word_len": 20,
        "lower_words": False,  # word level: look words up lower-cased (characters keep the case)
        "zero_digits": False,  # word level: look words up with every digit as 0
        "limit": None,  # use only the first N examples of each split (quick runs, CI)
    },
    "model": {
        "cell": "lstm",  # elman | gru | lstm
        "embed_dim": 128,
        "units": 128,
        "depth": 1,
        "bidirectional": True,
        "dropout": 0.0,
        "recurrent_dropout": 0.0,
        "pooling": "last",  # classify: last | mean | max | final
        "crf": False,  # tag
        "vectors": None,  # pretrained word vectors (text format)
        "char_embed_dim": 32,
        "char_units": 32,
        "attention": "luong",  # seq2seq: luong | luong_dot | bahdanau | none (the plain encoder-decoder)
    },
    "train": {
        "epochs": 10,
        "optimizer": "adam",  # adam | sgd | rmsprop | adamw
        "learning_rate": 1e-3,
        "clipnorm": 1.0,
        # decoupled weight decay (the variable shrinks by learning_rate * weight_decay a step), for every
        # optimizer; None: the optimizer's own default (adamw 0.004, the others none)
        "weight_decay": None,
        # > 0: targets smoothed towards uniform by this much (keras_seq.LabelSmoothedCrossentropy); softmax
        # outputs only (not a CRF). val_loss then includes the smoothing term.
        "label_smoothing": 0.0,
        "patience": 3,  # early stopping: epochs without a better `monitor`
        # What picks the kept epoch: val_loss | val_accuracy | val_f1 (tag: token accuracy / entity F1).
        "monitor": "val_loss",
        # multiply the learning rate by this after `lr_patience` epochs without a better `monitor` (1: off)
        "lr_decay": None,
        "lr_patience": 1,
        # "budget": the rate falls linearly over train.max_minutes, epoch by epoch, and the run stops within
        # half an epoch of it (keras_seq.pipelines.budget; Li et al. 2020). Not with lr_decay.
        "lr_schedule": None,
        "tokens_per_batch": 4096,
        "max_batch": 64,
        # sorted: length-sorted batches under the token budget, ties and batch order reshuffled each epoch
        # (keras_seq.pipelines.batching.sorted_batches; padding well under 1%); buckets: tf.data's length
        # buckets (`buckets` of them, at the length quantiles) over a shuffle buffer.
        "batching": "sorted",
        "buckets": 12,
        "seed": 0,
        "jit_compile": False,
        # Keras mixed precision for training: "mixed_bfloat16" (CPUs with AVX512_BF16 / AMX, recent GPUs) or
        # "mixed_float16" (GPUs); matmuls in 16 bits, states, losses and outputs in float32. The run's
        # model.keras is float32 (what exports serve), evaluated as such. None: float32 throughout.
        # "auto": mixed_bfloat16 where the hardware has bf16 instructions, else float32
        # (keras_seq.pipelines.precision: emulated bf16 is slower than float32).
        "mixed_precision": None,
        "lm_batch": 32,  # lm: parallel tracks
        "lm_window": 100,  # lm: truncated-BPTT window
        "word_dropout": 0.0,  # classify / tag: replace training word ids by <UNK> with this probability
        "unk_singletons": 0.0,  # ... and words seen once in training with this one (Lample et al. 2016: 0.5)
        "max_minutes": None,  # stop after this many minutes of training
        # Where training runs (keras_seq.pipelines.distribute): default | mirrored (this machine's GPUs) |
        # multi_worker (MultiWorkerMirroredStrategy over the cluster TF_CONFIG names).
        "strategy": "default",
        # "grpc://HOST:PORT": training batches made by the tf.data service's workers
        # (keras_seq.pipelines.data_service), the training split in this many shards; the
        # dispatcher must answer within data_service_timeout seconds.
        "data_service": "",
        "data_service_shards": 8,
        "data_service_timeout": 30,
    },
    # seq2seq: how outputs are searched (evaluate, generate, and the exports' in-graph / NumPy
    # search); the keys and their meaning are in keras_seq.tasks.seq2seq
    "decode": dict(DECODE_DEFAULTS),
}


def _merge(base: dict, override: dict, where: str = "") -> dict:
    out = copy.deepcopy(base)
    for key, value in override.items():
        name = f"{where}{key}"
        if key not in base:
            raise ValueError(f"unknown config key '{name}'; known: {sorted(base)}")
        if isinstance(base[key], dict):
            if not isinstance(value, dict):
                raise ValueError(f"config key '{name}' must be a table")
            out[key] = _merge(base[key], value, f"{name}.")
        else:
            out[key] = value
    return out


def _parse_value(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text  # a bare string


def load_config(path: str | Path | None, overrides: list[str] | tuple[str, ...] = ()) -> dict:
    """DEFAULTS <- the TOML file <- each `key=value` (dotted keys, TOML values)."""
    config = copy.deepcopy(DEFAULTS)
    if path is not None:
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise FileNotFoundError(f"no config file at {path}") from None
        except tomllib.TOMLDecodeError as error:
            raise ValueError(f"{path}: not valid TOML ({error})") from None
        config = _merge(config, data)
    for item in overrides:
        if "=" not in item:
            raise ValueError(f"--set expects key=value; received {item!r}")
        key, text = item.split("=", 1)
        parts = key.strip().split(".")
        nested: dict = {}
        cursor = nested
        for part in parts[:-1]:
            cursor = cursor.setdefault(part, {})
        cursor[parts[-1]] = _parse_value(text.strip())
        config = _merge(config, nested)
    from keras_seq.pipelines.readers.sources import check_fractions

    check_fractions(config["data"]["split_fractions"])
    part = pipeline_for(config["task"])
    monitors = part.monitors
    if config["train"]["monitor"] not in monitors:
        raise ValueError(
            f"train.monitor must be one of {monitors} for a {config['task']} run; "
            f"received {config['train']['monitor']!r}"
        )
    check_decode_settings(config["decode"])
    _check_distribution(config)
    if config["train"]["batching"] not in ("sorted", "buckets"):
        raise ValueError(f"train.batching must be 'sorted' or 'buckets'; received {config['train']['batching']!r}")
    from keras_seq.pipelines.precision import PRECISIONS

    precision = config["train"]["mixed_precision"]
    if precision is not None and precision not in PRECISIONS:
        raise ValueError(
            f"train.mixed_precision must be one of {', '.join(map(repr, PRECISIONS))}; received {precision!r}"
        )
    if precision == "float32":  # TOML has no null: the way to switch off a config's mixed precision
        config["train"]["mixed_precision"] = None
    smoothing = config["train"]["label_smoothing"]
    if isinstance(smoothing, bool) or not isinstance(smoothing, (int, float)) or not 0 <= smoothing < 1:
        raise ValueError(f"train.label_smoothing must be a number in [0, 1); received {smoothing!r}")
    weight_decay = config["train"]["weight_decay"]
    if weight_decay is not None and (
        isinstance(weight_decay, bool) or not isinstance(weight_decay, (int, float)) or not 0 <= weight_decay < 1
    ):
        raise ValueError(f"train.weight_decay must be a number in [0, 1); received {weight_decay!r}")
    decay = config["train"]["lr_decay"]
    if decay is not None and (isinstance(decay, bool) or not (isinstance(decay, (int, float)) and 0 < decay <= 1)):
        raise ValueError(f"train.lr_decay must be a number in (0, 1] (1: no decay); received {decay!r}")
    if decay == 1:  # TOML has no null: a factor of 1 is how to switch a config's decay off
        config["train"]["lr_decay"] = decay = None
    schedule = config["train"]["lr_schedule"]
    if schedule is not None:
        from keras_seq.pipelines.budget import LR_SCHEDULES

        if schedule not in LR_SCHEDULES:
            raise ValueError(
                f"train.lr_schedule must be one of {', '.join(map(repr, LR_SCHEDULES))}; received {schedule!r}"
            )
        if decay is not None:
            raise ValueError("train.lr_schedule and train.lr_decay both set the learning rate; set one of them")
        minutes = config["train"]["max_minutes"]
        if isinstance(minutes, bool) or not isinstance(minutes, (int, float)) or minutes <= 0:
            raise ValueError(
                f'train.lr_schedule = "budget" needs train.max_minutes > 0 (the budget it decays '
                f"over); received {minutes!r}"
            )
    part.check_config(config)
    return config


STRATEGIES = ("default", "mirrored", "multi_worker")


def service_address(address: str) -> str:
    """train.data_service's ``grpc://HOST:PORT`` -> ``HOST:PORT``; a one-line error for anything else."""
    rest = address[len("grpc://") :] if isinstance(address, str) and address.startswith("grpc://") else ""
    host, _, port = rest.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"train.data_service must be 'grpc://HOST:PORT'; received {address!r}")
    return rest


def _check_distribution(config: dict) -> None:
    """train.strategy / train.data_service, before TensorFlow starts."""
    train = config["train"]
    if train["strategy"] not in STRATEGIES:
        raise ValueError(f"train.strategy must be one of {STRATEGIES}; received {train['strategy']!r}")
    if not train["data_service"]:
        return
    service_address(train["data_service"])
    shards, timeout = train["data_service_shards"], train["data_service_timeout"]
    if isinstance(shards, bool) or not isinstance(shards, int) or shards < 1:
        raise ValueError(f"train.data_service_shards must be a positive integer; received {shards!r}")
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
        raise ValueError(f"train.data_service_timeout must be a positive number of seconds; received {timeout!r}")
    if train["strategy"] == "multi_worker":
        raise ValueError(
            "train.data_service feeds one trainer (its batches arrive in the order the service's "
            "workers finish them, which several training workers could not share step for step); "
            "use it with train.strategy = 'default' or 'mirrored'"
        )
    if get_task(config["task"]).stream:
        raise ValueError(
            f"train.data_service makes batches of examples; a {config['task']} run reads one token "
            "stream in windows (train it without the data service)"
        )


def dump_toml(config: dict) -> str:
    """The resolved config as TOML (None values are left out: TOML has no null)."""

    def value(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
        return repr(v)

    lines = [f"task = {value(config['task'])}"]
    for table in ("data", "model", "train", "decode"):
        lines.append(f"\n[{table}]")
        lines += [f"{k} = {value(v)}" for k, v in config[table].items() if v is not None]
    return "\n".join(lines) + "\n"
