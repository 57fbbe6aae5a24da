"""The optimizer a config describes (``[train]``): its class and settings, its learning rate (a constant, or
ULMFiT's slanted triangular schedule over every planned step) and its learning rate per layer group."""

from __future__ import annotations

import keras

import keras_seq


def build_optimizer(train: dict, model: keras.Model, steps_per_epoch: int | None) -> keras.optimizers.Optimizer:
    """The configured optimizer: its learning rate (ULMFiT's slanted triangular schedule over every epoch
    with ``train.lr_schedule``), per layer group (``train.discriminative_decay``), and the moving average
    of the weights it keeps (``train.ema_momentum``)."""
    learning_rate = train["learning_rate"]
    if train["lr_schedule"] == "slanted_triangular":
        learning_rate = keras_seq.SlantedTriangular(
            learning_rate,
            total_steps=train["epochs"] * (steps_per_epoch or 1),
            cut_fraction=train["stlr_cut_fraction"],
            ratio=train["stlr_ratio"],
        )
    optimizer = _base_optimizer(train, learning_rate)
    if train["discriminative_decay"]:
        optimizer = keras_seq.discriminative(optimizer, model, decay=train["discriminative_decay"])
    return optimizer


def _base_optimizer(train: dict, learning_rate) -> keras.optimizers.Optimizer:
    classes = {
        "adam": keras.optimizers.Adam,
        "adamw": keras.optimizers.AdamW,
        "sgd": keras.optimizers.SGD,
        "rmsprop": keras.optimizers.RMSprop,
    }
    if train["optimizer"] not in classes:
        raise ValueError(f"train.optimizer must be one of {sorted(classes)}; received {train['optimizer']!r}")
    options = {} if train["weight_decay"] is None else {"weight_decay": train["weight_decay"]}
    if train["ema_momentum"] is not None:
        options.update(use_ema=True, ema_momentum=train["ema_momentum"])
    return classes[train["optimizer"]](learning_rate=learning_rate, clipnorm=train["clipnorm"], **options)
