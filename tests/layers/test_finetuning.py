"""Pretrain-then-fine-tune pieces: ULMFiT's tools in a user's `fit` (TensorFlow here, JAX in its own
process: tests/scripts/finetuning_check.py), concat pooling, and `load_pretrained` / `init_from`."""

from __future__ import annotations

import contextlib
import io
import json
import re

import keras
import numpy as np
import pytest

import keras_seq
from tests.helpers import REPO, run_python

CHECK = REPO / "tests" / "scripts" / "finetuning_check.py"
GROUPS = [["embedding"], ["bi_gru_0"], ["probabilities"]]


def _assert_facts(facts: dict) -> None:
    assert facts["groups"] == GROUPS
    factor = {"embedding": 0.25, "bi_gru_0": 0.5, "probabilities": 1.0}
    for path, ratio in facts["ratios"].items():
        assert ratio == pytest.approx(factor[path.split("/")[0]], rel=1e-4), path
    assert facts["changed"] == [
        ["probabilities"],
        ["bi_gru_0", "probabilities"],
        ["bi_gru_0", "embedding", "probabilities"],
    ]
    assert facts["changed_resumed"] == facts["changed"][1:3]
    assert all(facts["trainable_after"])
    assert facts["loaded_optimizer"] == "DiscriminativeAdam" and facts["loaded_schedule"] == "SlantedTriangular"
    assert facts["loaded_rates"]["embedding"] == pytest.approx(2.6**-2)
    assert facts["same_predictions"]
    average = facts["moving_average"]
    assert average["own_minus_average"] > 1e-3  # the two differ, so the checks below can fail
    assert average["validated_average"] and average["epoch_end_before_is_average"]
    assert average["epoch_end_after_is_own"] and average["final_is_average"] and average["val_loss_matches"]
    assert average["ends_while_frozen_with_the_average"]


def test_fine_tuning_tools_in_a_users_fit_on_tensorflow(tmp_path):
    from tests.scripts import finetuning_check

    facts = finetuning_check.run(tmp_path)
    assert facts["backend"] == "tensorflow"
    _assert_facts(facts)


@pytest.mark.slow
def test_fine_tuning_tools_in_a_users_fit_on_jax(tmp_path):
    code = f"import runpy; runpy.run_path({str(CHECK)!r}, run_name='__main__')"
    result = run_python(code, str(tmp_path), env={"KERAS_BACKEND": "jax"}, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    facts = json.loads(result.stdout.strip().splitlines()[-1])
    assert facts["backend"] == "jax"
    _assert_facts(facts)


@pytest.mark.slow
def test_the_guides_example_runs_as_written(tmp_path, monkeypatch):
    """docs/guide/pretraining.md's Python block, as a user's script (in this process: TensorFlow is
    imported already)."""
    page = (REPO / "docs" / "guide" / "pretraining.md").read_text(encoding="utf-8")
    (block,) = re.findall(r"```python\n(.*?)```", page, re.S)
    monkeypatch.chdir(tmp_path)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(block, "docs/guide/pretraining.md", "exec"), {"__name__": "__main__"})
    assert "bi_gru_0 (forward) <- gru_0" in printed.getvalue()
    assert "[['embedding'], ['bi_gru_0'], ['probabilities']]" in printed.getvalue()


def test_slanted_triangular_rises_to_the_cut_then_falls_linearly():
    schedule = keras_seq.SlantedTriangular(0.01, total_steps=200, cut_fraction=0.1, ratio=32)
    rates = np.array([float(schedule(t)) for t in range(0, 201)])
    assert rates.argmax() == 20 and rates.max() == pytest.approx(0.01)
    assert rates[0] == pytest.approx(0.01 / 32) and rates[200] == pytest.approx(0.01 / 32)
    assert np.all(np.diff(rates[:21]) > 0) and np.all(np.diff(rates[20:]) < 0)
    assert float(schedule(500)) == pytest.approx(0.01 / 32)  # past the end: the floor, never negative
    again = keras_seq.SlantedTriangular.from_config(schedule.get_config())
    assert float(again(57)) == pytest.approx(float(schedule(57)))
    with pytest.raises(ValueError, match="total_steps"):
        keras_seq.SlantedTriangular(0.01, total_steps=0)


def test_discriminative_refuses_what_it_cannot_honour():
    model = keras_seq.build_classifier(20, 2, units=4, embed_dim=4)
    with pytest.raises(ValueError, match="decay"):
        keras_seq.discriminative(keras.optimizers.Adam(), model, decay=0.5)
    with pytest.raises(ValueError, match="give `model`"):
        keras_seq.discriminative(keras.optimizers.Adam())
    with pytest.raises(ValueError, match="built-in optimizers"):
        keras_seq.discriminative(keras.optimizers.LossScaleOptimizer(keras.optimizers.Adam()), model)
    with pytest.raises(ValueError, match="finite factors"):
        keras_seq.discriminative(keras.optimizers.SGD(), layer_rates={"embedding": -1})
    twice = keras_seq.discriminative(keras_seq.discriminative(keras.optimizers.SGD(0.3), model), model, decay=2)
    assert type(twice).__name__ == "DiscriminativeSGD" and twice.layer_rates["embedding"] == 0.25


def test_gradual_unfreezing_names_unknown_layers():
    model = keras_seq.build_classifier(20, 2, units=4, embed_dim=4)
    model.compile("adam", "sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match=r"no layers named \['nope'\]"):
        model.fit(np.ones((2, 3)), np.zeros(2), verbose=0, callbacks=[keras_seq.GradualUnfreezing([["nope"]])])


def test_validating_on_the_moving_average_needs_an_optimizer_that_keeps_one():
    model = keras_seq.build_classifier(20, 2, units=3, embed_dim=3)
    model.compile(keras.optimizers.Adam(), "sparse_categorical_crossentropy")
    ids, labels = np.ones((4, 3), "int32"), np.zeros(4, "int32")
    with pytest.raises(ValueError, match="use_ema=True"):
        model.fit(ids, labels, verbose=0, callbacks=[keras_seq.ValidateMovingAverage()])


def test_concat_pooling_is_last_max_and_mean_over_valid_steps():
    x = np.arange(12, dtype="float32").reshape(1, 4, 3) * np.array([1, -1, 1], "float32")
    mask = np.array([[True, True, True, False]])
    pooled = np.asarray(keras_seq.SequencePooling("concat")(x, mask=mask))
    valid = x[0, :3]
    np.testing.assert_allclose(pooled[0], np.concatenate([valid[-1], valid.max(0), valid.mean(0)]), rtol=1e-6)
    model = keras_seq.build_classifier(30, 2, cell="gru", units=4, embed_dim=4, pooling="concat")
    assert model.get_layer("pooling").output.shape[-1] == 3 * 8


def _lm(direction_seed: int, cell: str = "gru", units: int = 6, depth: int = 2, vocab: int = 40):
    keras.utils.set_random_seed(direction_seed)
    return keras_seq.build_language_model(vocab, cell=cell, units=units, embed_dim=5, depth=depth)


def test_load_pretrained_fills_each_direction_and_matches_rows_by_token():
    forward, backward = _lm(1), _lm(2)
    model = keras_seq.build_classifier(30, 2, cell="gru", units=6, embed_dim=5, depth=2)
    lm_tokens = ["<PAD>", "<UNK>"] + [f"w{i}" for i in range(38)]
    my_tokens = ["<PAD>", "<UNK>"] + [f"w{i}" for i in range(20, 40)] + [f"new{i}" for i in range(8)]
    before = model.get_layer("embedding").get_weights()[0]
    report = keras_seq.load_pretrained(model, forward, source_tokens=lm_tokens, target_tokens=my_tokens)
    assert report.loaded[0] == "embedding <- embedding (20 of 30 rows, matched by token)"  # w38, w39: not in the LM
    table, lm_table = model.get_layer("embedding").get_weights()[0], forward.get_layer("embedding").get_weights()[0]
    np.testing.assert_array_equal(table[2], lm_table[22])  # w20
    np.testing.assert_array_equal(table[:2], lm_table[:2])  # padding and <UNK> rows
    np.testing.assert_array_equal(table[20:], before[20:])  # w38.. and the new words keep their start
    report = keras_seq.load_pretrained(model, backward, direction="backward", embedding=False)
    assert report.loaded == ["bi_gru_0 (backward) <- gru_0"]
    assert report.not_loaded == [
        "bi_gru_1 (backward) <- gru_1: it reads 6 features per step, this layer 12 (above the first level a "
        "bidirectional stack reads both directions' outputs)"
    ]
    for depth in range(1):
        bi = model.get_layer(f"bi_gru_{depth}")
        for half, lm in ((bi.forward_layer, forward), (bi.backward_layer, backward)):
            for mine, theirs in zip(half.get_weights(), lm.get_layer(f"gru_{depth}").get_weights()):
                np.testing.assert_array_equal(mine, theirs)


def test_load_pretrained_reports_what_does_not_fit_and_refuses_when_nothing_does():
    model = keras_seq.build_classifier(40, 2, cell="gru", units=6, embed_dim=5, depth=2)
    report = keras_seq.load_pretrained(model, _lm(1, depth=3))
    assert report.not_loaded[1:] == ["gru_2: the model has only 2 recurrent levels"]
    wider = keras_seq.load_pretrained(model, _lm(1, units=8, depth=1))
    assert wider.loaded == ["embedding <- embedding (40 of 40 rows)"]
    assert "cell and units must match" in wider.not_loaded[0]
    assert wider.not_loaded[1] == "bi_gru_1: no pretrained layer at depth 1"
    lstm_model = keras_seq.build_classifier(30, 2, cell="lstm", units=6, embed_dim=7)
    with pytest.raises(ValueError, match="nothing of the pretrained model fits"):
        keras_seq.load_pretrained(lstm_model, _lm(1))
    one_way = keras_seq.build_language_model(40, cell="gru", units=6, embed_dim=5, depth=1)
    report = keras_seq.load_pretrained(one_way, _lm(2), direction="backward")
    assert report.not_loaded[0].startswith("gru_0 <- gru_0: a backward LM does not fit")
    with pytest.raises(ValueError, match="direction"):
        keras_seq.load_pretrained(model, _lm(1), direction="sideways")


def test_a_language_model_starts_from_the_unigram_bias_the_pipelines_set():
    from keras_seq.pipelines.fit_data import FitData
    from keras_seq.pipelines.tasks import pipeline_for

    ids = np.array([2, 2, 3, 5, 2, 4])
    lm = keras_seq.build_language_model(
        7, units=4, embed_dim=3, depth=1, output_bias=keras_seq.unigram_log_probs(ids, 7)
    )
    np.testing.assert_allclose(
        np.exp(np.asarray(lm.get_layer("logits").bias)), np.array([1, 1, 4, 2, 2, 2, 1]) / 13, rtol=1e-5
    )
    fresh = keras_seq.build_language_model(7, units=4, embed_dim=3, depth=1)
    fit = FitData(None, None, [], stream=ids)
    pipeline_for("lm").start_weights(fresh, fit, {"data": {"level": "char"}})
    assert not np.any(np.asarray(fresh.get_layer("logits").bias))  # characters: zeros, as before
    pipeline_for("lm").start_weights(fresh, fit, {"data": {"level": "word"}})
    np.testing.assert_allclose(np.asarray(fresh.get_layer("logits").bias), np.asarray(lm.get_layer("logits").bias))
    with pytest.raises(ValueError, match="output_bias"):
        keras_seq.build_language_model(7, units=4, embed_dim=3, depth=1, output_bias=np.zeros(6))
