"""Run configuration: TOML files with `--set key=value` overrides.

A config has ``task`` and the tables ``[data]``, ``[model]``, ``[train]`` and ``[decode]``;
every key is defined once in `keras_seq.pipelines.config_keys` (type, default, meaning), so a
config names only what it changes, and an unknown key or a value of the wrong type is an error
naming the key (a typo must not be ignored).
"""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any

from keras_seq.pipelines.config_keys import KEYS, defaults
from keras_seq.pipelines.tasks import pipeline_for
from keras_seq.tasks import get_task
from keras_seq.tasks.seq2seq import check_decode_settings

#: The shipped configs (``keras-seq config list``), installed with the package.
CONFIG_DIR = Path(__file__).resolve().parent / "configs"

#: Every key with its default (`keras_seq.pipelines.config_keys` defines each key once: type,
#: default, meaning, the tasks that read it).
DEFAULTS: dict[str, Any] = defaults()


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
    """DEFAULTS <- the TOML file (a path, or a shipped config's name) <- each `key=value` (dotted keys,
    TOML values)."""
    config = copy.deepcopy(DEFAULTS)
    if path is not None:
        path = resolve_config(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
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
    _check_fine_tuning(config)
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
        if schedule == "budget" and (
            isinstance(minutes, bool) or not isinstance(minutes, (int, float)) or minutes <= 0
        ):
            raise ValueError(
                f'train.lr_schedule = "budget" needs train.max_minutes > 0 (the budget it decays '
                f"over); received {minutes!r}"
            )
    _check_types(config)
    part.check_config(config)
    return config


def _check_fine_tuning(config: dict) -> None:
    """model.init_from and the fine-tuning settings (train.discriminative_decay, gradual_unfreezing, stlr_*,
    ema_momentum)."""
    train = config["train"]
    runs = config["model"].get("init_from")
    if runs == []:  # TOML has no null: an empty list is how to switch a config's pretrained start off
        config["model"]["init_from"] = runs = None
    if runs is not None:
        items = [runs] if isinstance(runs, str) else runs
        if not isinstance(items, list) or not items or not all(isinstance(r, str) and r for r in items):
            raise ValueError(f"model.init_from must be a run directory or a list of them; received {runs!r}")
        config["model"]["init_from"] = items  # one shape for every reader: a list
    decay = train["discriminative_decay"]
    if decay is not None and (isinstance(decay, bool) or not isinstance(decay, (int, float)) or decay < 1):
        raise ValueError(f"train.discriminative_decay must be a number >= 1 (ULMFiT: 2.6); received {decay!r}")
    every = train["gradual_unfreezing"]
    if isinstance(every, bool) or not isinstance(every, int) or every < 0:
        raise ValueError(f"train.gradual_unfreezing must be 0 (off) or epochs per layer group; received {every!r}")
    momentum = train["ema_momentum"]
    if momentum is not None and (
        isinstance(momentum, bool) or not isinstance(momentum, (int, float)) or not 0 < momentum < 1
    ):
        raise ValueError(f"train.ema_momentum must be a number in (0, 1), e.g. 0.999; received {momentum!r}")
    cut = train["stlr_cut_fraction"]
    if isinstance(cut, bool) or not isinstance(cut, (int, float)) or not 0 < cut < 1:
        raise ValueError(f"train.stlr_cut_fraction must be a number in (0, 1); received {cut!r}")
    ratio = train["stlr_ratio"]
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or ratio < 1:
        raise ValueError(f"train.stlr_ratio must be a number >= 1; received {ratio!r}")


def _check_types(config: dict) -> None:
    """Each key's type and choices, from its one definition (after the checks above, whose messages say more)."""
    for key in KEYS.values():
        value = config[key.table][key.key] if key.table else config[key.name]
        key.check(value)


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
    """The resolved config as TOML, by tomli-w (None values are left out: TOML has no null)."""
    import tomli_w

    def drop_none(table: dict) -> dict:
        return {k: (drop_none(v) if isinstance(v, dict) else v) for k, v in table.items() if v is not None}

    return tomli_w.dumps(drop_none(config))


def shipped_configs() -> list[str]:
    """The names of the configs shipped with the package."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.toml"))


def resolve_config(name: str | Path) -> Path:
    """A path, or the name of a shipped config."""
    path = Path(name)
    if path.exists():
        return path
    shipped = CONFIG_DIR / (path.name if path.name.endswith(".toml") else f"{path.name}.toml")
    if shipped.exists():
        return shipped
    raise FileNotFoundError(f"no config {str(name)!r} (neither a file nor one of {', '.join(shipped_configs())})")


def config_summary(name: str) -> str:
    """A shipped config's first comment line (what it trains), for ``keras-seq config list``."""
    for line in resolve_config(name).read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            return line.lstrip("# ").strip()
    return ""


def config_template(name: str | Path, data: str | None = None) -> str:
    """A commented TOML file to edit: every key the config's task reads, each with its meaning, type and
    default, set to the config's value (`data`: the data.source to put in)."""
    import tomli_w

    from keras_seq.pipelines.config_keys import TABLES

    config = load_config(resolve_config(name), [f"data.source={_toml_string(data)}"] if data else [])
    task = config["task"]
    lines = [
        f"# keras-seq config for a {task} run, from {name!r}. Every key: keras-seq config keys, or the",
        "# configuration reference of the documentation. Train it: keras-seq train THIS.toml --out RUN",
        "",
    ]
    lines.append(tomli_w.dumps({"task": task}).strip())
    for table in TABLES:
        keys = [k for k in KEYS.values() if k.table == table and k.applies_to(task)]
        if not keys:
            continue
        lines += ["", f"[{table}]"]
        for key in keys:
            value = config[table][key.key]
            default = "none" if key.default is None else _inline(key.default)
            lines.append(f"# {key.help} ({key.type_name}; default {default})")
            lines.append(tomli_w.dumps({key.key: value}).strip() if value is not None else f"# {key.key} =")
    return "\n".join(lines) + "\n"


def _inline(value) -> str:
    """A TOML value on one line (tomli-w spreads arrays over several)."""
    import tomli_w

    if isinstance(value, list):
        return "[" + ", ".join(_inline(v) for v in value) + "]"
    return tomli_w.dumps({"v": value}).strip()[4:]


def _toml_string(text: str) -> str:
    return _inline(str(text))
