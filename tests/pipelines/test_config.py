"""Config files: every key defined once (types, defaults, the generated reference), the TOML writer
round-trips every value type, control characters included, and `keras-seq config` commands."""

from __future__ import annotations

import json
import tomllib

import pytest

from keras_seq.pipelines.config import DEFAULTS, config_template, dump_toml, load_config, shipped_configs
from keras_seq.pipelines.config_keys import KEYS, defaults
from keras_seq.tasks.seq2seq import DECODE_DEFAULTS
from tests.helpers import cli_in_process


def test_the_defaults_come_from_the_one_definition():
    assert defaults() == DEFAULTS
    assert {k.key: k.default for k in KEYS.values() if k.table == "decode"} == DECODE_DEFAULTS
    for key in KEYS.values():
        key.check(key.default)  # every default is of its own type


@pytest.mark.parametrize(
    "text",
    ["line\nbreak", "tab\there", 'quote " and \\ backslash', "bell \x07 and nul-free \x1f", "emoji \U0001f600 é"],
)
def test_the_writer_round_trips_every_value_type(tmp_path, text):
    config = load_config(
        None,
        [
            f"data.source={json.dumps(text)}",  # a TOML basic string: JSON's escapes are TOML's
            "data.split_fractions=[0.7, 0.2, 0.1]",
            "data.max_len=7",
            "model.dropout=0.25",
            "data.lower=false",
        ],
    )
    written = dump_toml(config)
    assert tomllib.loads(written) == {
        t: ({k: v for k, v in d.items() if v is not None} if isinstance(d, dict) else d) for t, d in config.items()
    }
    path = tmp_path / "config.toml"
    path.write_text(written, encoding="utf-8")
    assert load_config(path) == config


@pytest.mark.parametrize(
    "override, message",
    [
        ("data.max_len='long'", "config key 'data.max_len' must be int (optional); received 'long'"),
        ("model.cell='rnn'", "config key 'model.cell' must be one of 'elman', 'gru', 'lstm'; received 'rnn'"),
        ("train.epochs=2.5", "config key 'train.epochs' must be int; received 2.5"),
        ("data.lower=1", "config key 'data.lower' must be bool; received 1"),
    ],
)
def test_a_value_of_the_wrong_type_is_named(override, message):
    with pytest.raises(ValueError) as error:
        load_config(None, [override])
    assert str(error.value) == message


def test_shipped_configs_read_the_data_folder_from_one_variable(monkeypatch, tmp_path):
    from keras_seq.pipelines.readers.sources import expand_data_source

    for name in shipped_configs():
        source = load_config(f"{name}").get("data", {}).get("source", "")
        assert "../" not in source, name  # no path relative to the working directory
    monkeypatch.setenv("KERAS_SEQ_DATA", str(tmp_path))
    assert expand_data_source("${KERAS_SEQ_DATA}/conll2003") == str(tmp_path / "conll2003")
    monkeypatch.delenv("KERAS_SEQ_DATA")
    with pytest.raises(FileNotFoundError, match=r"reads under \$KERAS_SEQ_DATA, which is not set"):
        expand_data_source("${KERAS_SEQ_DATA}/conll2003")


@pytest.mark.parametrize("name", shipped_configs())
def test_config_init_writes_a_commented_config_that_loads_to_the_same_values(tmp_path, name):
    text = config_template(name, data="my data.csv" if name != "g2p_cmudict" else None)
    path = tmp_path / "my.toml"
    path.write_text(text, encoding="utf-8")
    again, original = load_config(path), load_config(name)
    if name != "g2p_cmudict":
        assert again["data"].pop("source") == "my data.csv"
        original["data"].pop("source")
    assert again == original
    task = original["task"]
    assert all(
        f"\n{k.key} =" in text or f"# {k.key} =" in text for k in KEYS.values() if k.table and k.applies_to(task)
    )
    assert '# Tokens are words or characters. (string; default "word")' in text


def test_config_commands():
    code, out, err = cli_in_process("config", "list", "--json")
    assert code == 0 and set(json.loads(out)) == set(shipped_configs())
    code, out, _ = cli_in_process("config", "keys", "--task", "tag")
    assert code == 0 and "data.tag_column" in out and "data.text_column" not in out
    code, out, _ = cli_in_process("config", "show", "ewt_upos")
    assert code == 0 and tomllib.loads(out)["task"] == "tag"
