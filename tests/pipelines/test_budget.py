"""train.max_minutes and train.lr_schedule = "budget" (keras_seq.pipelines.budget)."""

from __future__ import annotations

import csv
import re

import keras
import numpy as np
import pytest

from keras_seq.pipelines import budget as budget_module
from keras_seq.pipelines.budget import LR_FLOOR, TrainingBudget, budget_rate
from keras_seq.pipelines.config import load_config
from tests.helpers import REPO

DEMO = REPO / "pipelines" / "configs" / "demo.toml"


def test_the_rate_falls_linearly_to_the_floor_at_the_budget():
    assert budget_rate(0.01, 0.0, None, 100.0) == 0.01  # the first epoch: nothing measured yet
    assert budget_rate(0.01, 20.0, 20.0, 100.0) == pytest.approx(0.01 * (1 - 30 / 100))  # middle of epoch 2
    assert budget_rate(0.01, 90.0, 20.0, 100.0) == pytest.approx(0.01 * LR_FLOOR)  # past the budget


class _Clock:
    """time.monotonic for the callback; epoch k takes `seconds[k]` (the last one from then on)."""

    def __init__(self, *seconds: float) -> None:
        self.now, self.seconds, self.epochs = 1000.0, seconds, 0

    def __call__(self) -> float:
        return self.now


class _Tick(keras.callbacks.Callback):
    def __init__(self, clock: _Clock) -> None:
        super().__init__()
        self.clock = clock

    def on_epoch_end(self, epoch, logs=None):  # before TrainingBudget: the epoch's time has passed
        self.clock.now += self.clock.seconds[min(self.clock.epochs, len(self.clock.seconds) - 1)]
        self.clock.epochs += 1


def _fit(callback: TrainingBudget, clock: _Clock, epochs: int = 20) -> tuple[keras.callbacks.History, list[float]]:
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.1), loss="mse")
    rates = []

    class _Rates(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            rates.append(float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)))

    x = np.zeros((8, 3), "float32")
    history = model.fit(x, x[:, :1], epochs=epochs, verbose=0, callbacks=[_Tick(clock), callback, _Rates()])
    return history, rates


def test_the_schedule_sets_each_epochs_rate_and_stops_within_half_an_epoch(monkeypatch):
    clock = _Clock(25.0)
    monkeypatch.setattr(budget_module, "monotonic", clock)
    history, rates = _fit(TrainingBudget(minutes=100 / 60, schedule=True), clock)
    # 25 s epochs in 100 s: epoch k's middle is 25 k - 12.5; the 4th ends at the budget, the 5th would pass it
    assert rates == pytest.approx([0.1 * (1 - m / 100) for m in (0, 37.5, 62.5, 87.5)])
    assert len(history.epoch) == 4
    assert history.history["learning_rate"] == pytest.approx(rates)


def test_without_the_schedule_the_rate_stays_and_the_run_stops_after_passing_the_budget(monkeypatch):
    clock = _Clock(30.0)
    monkeypatch.setattr(budget_module, "monotonic", clock)
    history, rates = _fit(TrainingBudget(minutes=100 / 60), clock)
    assert rates == [pytest.approx(0.1)] * 4 and len(history.epoch) == 4  # 120 s > 100 s after the 4th


def test_the_rate_never_rises_when_an_epoch_runs_faster(monkeypatch):
    clock = _Clock(40.0, 10.0)  # the first epoch traces the graph
    monkeypatch.setattr(budget_module, "monotonic", clock)
    _, rates = _fit(TrainingBudget(minutes=200 / 60, schedule=True), clock, epochs=3)
    # epoch 2: 40 + 40 / 2 = 60 s; epoch 3 predicts 50 + 10 / 2 = 55 s, a higher rate: held at epoch 2's
    assert rates == pytest.approx([0.1, 0.1 * (1 - 60 / 200), 0.1 * (1 - 60 / 200)])


def test_a_resumed_run_carries_on_the_schedule_from_the_seconds_it_spent(monkeypatch):
    clock = _Clock(25.0)
    monkeypatch.setattr(budget_module, "monotonic", clock)
    _, rates = _fit(TrainingBudget(minutes=100 / 60, spent_seconds=50.0, epochs_done=2, schedule=True), clock)
    assert rates == pytest.approx([0.1 * (1 - m / 100) for m in (62.5, 87.5)])  # epochs 3 and 4 of the run


@pytest.mark.parametrize(
    "sets, message",
    [
        (['train.lr_schedule="cosine"'], "train.lr_schedule must be one of 'budget'"),
        (['train.lr_schedule="budget"'], "needs train.max_minutes > 0"),
        (['train.lr_schedule="budget"', "train.max_minutes=5", "train.lr_decay=0.5"], "both set the learning rate"),
        (["train.lr_decay=true"], "train.lr_decay must be a number in (0, 1]"),
        (["train.weight_decay=-0.1"], "train.weight_decay must be a number in [0, 1)"),
        (['train.weight_decay="0.1"'], "train.weight_decay must be a number in [0, 1)"),
    ],
)
def test_config_refuses_bad_schedule_settings(sets, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        load_config(DEMO, sets)


def test_a_decay_of_one_switches_a_configs_decay_off():
    config = load_config(DEMO, ["train.lr_decay=1", 'train.lr_schedule="budget"', "train.max_minutes=5"])
    assert config["train"]["lr_decay"] is None and config["train"]["lr_schedule"] == "budget"


def test_a_scheduled_run_writes_its_falling_rates_to_history(tmp_path):
    from keras_seq.pipelines.synthetic import write_corpus
    from keras_seq.pipelines.train import train_run

    corpus = write_corpus(tmp_path / "data", {"train": 300, "dev": 60, "test": 60})
    config = load_config(
        DEMO,
        [
            f'data.source="{corpus}"',
            "train.epochs=3",
            "train.patience=5",
            "train.max_minutes=600",
            'train.lr_schedule="budget"',
        ],
    )
    train_run(config, tmp_path / "run", verbose=0)
    with open(tmp_path / "run" / "history.csv", newline="") as f:
        rates = [float(row["learning_rate"]) for row in csv.DictReader(f)]
    assert len(rates) == 3 and rates[0] == pytest.approx(0.01, rel=1e-6) and rates[0] > rates[1] >= rates[2]


@pytest.mark.parametrize(
    "optimizer, sets, expected",
    [
        ("adam", [], None),  # the optimizer's own default: none for Adam
        ("adamw", [], 0.004),  # and Keras' 0.004 for AdamW
        ("adamw", ["train.weight_decay=0.05"], 0.05),
        ("adam", ["train.weight_decay=0.02"], 0.02),  # decoupled decay for any optimizer
    ],
)
def test_weight_decay_reaches_the_optimizer(optimizer, sets, expected):
    from keras_seq.pipelines.optimizers import build_optimizer

    config = load_config(DEMO, [f'train.optimizer="{optimizer}"', *sets])
    assert build_optimizer(config["train"], None, None).weight_decay == (
        None if expected is None else pytest.approx(expected)
    )


def test_a_run_with_a_moving_average_validates_and_keeps_the_average(tmp_path):
    """train.ema_momentum: the optimizer keeps the average and each validation runs on it, while training
    follows the same steps as without it; the kept epoch's checkpoint holds the average (the final model
    scores what history recorded for that epoch)."""
    from keras_seq.pipelines.optimizers import build_optimizer
    from keras_seq.pipelines.synthetic import write_corpus
    from keras_seq.pipelines.train import train_run

    corpus = write_corpus(tmp_path / "data", {"train": 300, "dev": 60, "test": 60})
    runs = {}
    for name, sets in (("plain", []), ("average", ["train.ema_momentum=0.9"])):
        config = load_config(DEMO, [f'data.source="{corpus}"', "train.epochs=3", "train.patience=5", *sets])
        metrics = train_run(config, tmp_path / name, verbose=0)
        with open(tmp_path / name / "history.csv", newline="") as f:
            runs[name] = (metrics, [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)])
    assert build_optimizer(config["train"], None, None).ema_momentum == pytest.approx(0.9)
    (_, plain), (metrics, average) = runs["plain"], runs["average"]
    assert [r["loss"] for r in average] == pytest.approx([r["loss"] for r in plain], rel=1e-5)
    assert all(abs(a["val_loss"] - p["val_loss"]) > 1e-4 for a, p in zip(average, plain, strict=True))
    kept = average[metrics["kept_epoch"] - 1]
    assert metrics["validation"]["accuracy"] == pytest.approx(kept["val_accuracy"], abs=1e-6)
