"""Keras mixed precision (``mixed_bfloat16``): matmuls in bf16, states / losses / outputs in float32,
and float32 models in the run directory."""

from __future__ import annotations

import contextlib

import keras
import numpy as np
import pytest

import keras_seq
from tests.helpers import REPO

BUILTINS = {"LSTM": keras.layers.LSTM, "GRU": keras.layers.GRU}


@contextlib.contextmanager
def policy(name: str):
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(name)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


@pytest.mark.parametrize("name", ["LSTM", "GRU"])
def test_states_carried_in_float32_drift_less_than_the_builtins(name):
    """400 steps under mixed_bfloat16, the weights of a float32 reference: our layer's outputs
    stay closer to float32 than Keras' own layer's, which carries its states in bf16."""
    x = np.random.default_rng(0).normal(size=(8, 400, 32)).astype("float32")
    reference = BUILTINS[name](64, return_sequences=True)
    exact = np.asarray(reference(x))
    with policy("mixed_bfloat16"):
        ours, theirs = getattr(keras_seq, name)(64, return_sequences=True), BUILTINS[name](64, return_sequences=True)
        ours(x), theirs(x)
        ours.set_weights(reference.get_weights())
        theirs.set_weights(reference.get_weights())
        out = ours(x)
        assert keras.backend.standardize_dtype(out.dtype) == "bfloat16"  # the layer's compute dtype, as Keras wants
        assert ours.cell.state_dtype == "float32"
        ours_error = np.abs(np.asarray(keras.ops.cast(out, "float32")) - exact).mean()
        theirs_error = np.abs(np.asarray(keras.ops.cast(theirs(x), "float32")) - exact).mean()
    assert ours_error < 0.75 * theirs_error, (ours_error, theirs_error)
    assert ours_error < 2e-3


def test_task_models_train_with_float32_outputs_and_loss():
    rng = np.random.default_rng(0)
    ids = rng.integers(1, 50, (16, 12)).astype("int32")
    with policy("mixed_bfloat16"):
        tagger = keras_seq.build_tagger(50, 5, crf=True, units=8, embed_dim=8)
        tagger.compile("adam", loss=keras_seq.tagger_loss(tagger))
        loss = tagger.train_on_batch(ids, rng.integers(1, 5, (16, 12)))
        assert np.isfinite(loss) and tagger.get_layer("crf").compute_dtype == "float32"
        s2s = keras_seq.build_seq2seq(50, 20, units=8, embed_dim=8)
        s2s.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        logits = s2s([ids, ids % 20])
        assert keras.backend.standardize_dtype(logits.dtype) == "float32"
        assert np.isfinite(s2s.train_on_batch([ids, ids % 20], (ids + 1) % 20))
        classifier = keras_seq.build_classifier(50, 2, units=8, embed_dim=8, pooling="mean")
        assert keras.backend.standardize_dtype(classifier(ids).dtype) == "float32"


def test_a_mixed_precision_run_keeps_a_float32_model(tmp_path, monkeypatch):
    """train.mixed_precision = "auto" on a machine that has bf16 instructions (faked: this test must
    not depend on the CPU it runs on) trains under mixed_bfloat16 and says why."""
    from keras_seq.pipelines import precision
    from keras_seq.pipelines import train as train_module
    from keras_seq.pipelines.config import load_config
    from keras_seq.pipelines.synthetic import write_corpus
    from keras_seq.pipelines.train import train_run

    monkeypatch.setattr(precision, "native_bfloat16", lambda: "CPU flag avx512_bf16")
    monkeypatch.setattr(precision, "AUTO_BF16_MIN_UNITS", 1)  # the demo model is narrow
    corpus = write_corpus(tmp_path / "data", {"train": 300, "dev": 60, "test": 60})
    config = load_config(
        REPO / "pipelines" / "configs" / "demo.toml",
        [f'data.source="{corpus}"', "train.epochs=1", 'train.mixed_precision="auto"'],
    )
    twin = train_module._float32_twin

    def dies_after_training(*args):
        raise KeyboardInterrupt  # stopped after the last epoch, before the float32 model and metrics.json

    monkeypatch.setattr(train_module, "_float32_twin", dies_after_training)
    with pytest.raises(KeyboardInterrupt):
        train_run(config, tmp_path / "run", verbose=0)
    monkeypatch.setattr(train_module, "_float32_twin", twin)
    # The rerun only finishes (nothing left to train): the float32 twin takes the trained optimizer state
    # from the best checkpoint, which an optimizer that fit never built could not hold.
    metrics = train_run(config, tmp_path / "run", verbose=0)
    assert metrics["epochs_run"] == 1
    assert metrics["mixed_precision"] == "mixed_bfloat16" and 0.0 <= metrics["test"]["accuracy"] <= 1.0
    assert metrics["mixed_precision_auto"] == "CPU flag avx512_bf16"
    assert keras.mixed_precision.global_policy().name == "float32"  # restored after training
    model = keras.saving.load_model(tmp_path / "run" / "model.keras")
    assert {layer.dtype_policy.name for layer in model.layers} == {"float32"}
    assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) > 0  # the trained optimizer state


def test_mixed_precision_setting_is_checked():
    from keras_seq.pipelines.config import load_config

    with pytest.raises(ValueError, match="train.mixed_precision must be one of 'auto'"):
        load_config(None, ['train.mixed_precision="bf16"'])
    # TOML has no null: "float32" switches off a config's mixed precision (g2p_cmudict ships "auto")
    shipped = REPO / "pipelines" / "configs" / "g2p_cmudict.toml"
    assert load_config(shipped, [])["train"]["mixed_precision"] == "auto"
    assert load_config(shipped, ['train.mixed_precision="float32"'])["train"]["mixed_precision"] is None


X86 = (
    "processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Platinum 8481C\nflags\t\t: fpu avx2 avx512f {extra}\n\n"
    "processor\t: 1\nflags\t\t: fpu\n"
)
ARM = "processor\t: 0\nFeatures\t: fp asimd {extra}\nCPU implementer\t: 0x41\n"


@pytest.mark.parametrize(
    "text, extra, native",
    [
        (X86, "avx512_bf16 amx_tile", "CPU flag avx512_bf16"),
        (X86, "amx_bf16", "CPU flag amx_bf16"),
        (X86, "avx512_vnni", None),  # AVX-512 without BF16 (Ice Lake): emulated
        (ARM, "bf16 i8mm", "CPU flag bf16"),
        (ARM, "sve", None),
    ],
)
def test_auto_precision_takes_bf16_only_where_the_cpu_has_bf16_instructions(tmp_path, monkeypatch, text, extra, native):
    from keras_seq.pipelines import precision

    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(text.format(extra=extra))
    monkeypatch.setattr(precision, "CPUINFO", cpuinfo)
    import tensorflow as tf

    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: [])  # no GPU
    assert precision.native_bfloat16() == native
    policy, reason = precision.resolve_precision("auto")
    assert policy == ("mixed_bfloat16" if native else None)
    assert reason == (
        native
        or (
            "no bf16 instructions on Intel(R) Xeon(R) Platinum 8481C"
            if text is X86
            else f"no bf16 instructions on {precision.cpu_model()}"
        )
    )
    # on a bf16 CPU, "auto" keeps narrow recurrent layers in float32 (measured slower in bf16)
    if native:
        narrow = precision.AUTO_BF16_MIN_UNITS - 1
        assert precision.resolve_precision("auto", narrow) == (
            None,
            f"{native}, but {narrow} recurrent units < {precision.AUTO_BF16_MIN_UNITS}",
        )
        assert precision.resolve_precision("auto", precision.AUTO_BF16_MIN_UNITS) == ("mixed_bfloat16", native)
    # an explicit setting is what runs, whatever the machine
    assert precision.resolve_precision("mixed_bfloat16") == ("mixed_bfloat16", "set in the config")
    assert precision.resolve_precision(None) == precision.resolve_precision("float32") == (None, "set in the config")


def test_cpu_facts_are_empty_not_an_error_where_there_is_no_cpuinfo(tmp_path):
    from keras_seq.pipelines import precision

    assert precision.cpu_flags(tmp_path / "missing") == set()
    assert precision.cpu_model(tmp_path / "missing")  # platform's answer instead
    assert "bf16 instructions:" in precision.machine_summary()
