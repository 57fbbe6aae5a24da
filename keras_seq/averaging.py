r"""Validating on a moving average of the weights (Polyak averaging), in any user's ``fit``.

An optimizer built with ``use_ema=True`` keeps, next to each weight, its exponential moving average
over the train steps; Keras updates it inside every step, on every backend:

.. math::

    \bar\theta_1 = \theta_1, \qquad
    \bar\theta_t = m\,\bar\theta_{t-1} + (1 - m)\,\theta_t \quad (t > 1)

where :math:`\theta_t` are the weights after step :math:`t` and :math:`m` is ``ema_momentum``
(0.999 averages over about the last 1,000 steps). Keras writes the average into the model only when
``fit`` ends, so early stopping and checkpoints would pick an epoch by weights that are not the ones
kept. `ValidateMovingAverage` makes each validation run on the average instead.
"""

from __future__ import annotations

import keras

from keras_seq._keras_compat import moving_averages

__all__ = ["ValidateMovingAverage"]


class ValidateMovingAverage(keras.callbacks.Callback):
    """Runs every validation of ``fit`` on the optimizer's moving average of the weights, then gives the
    training back its own weights at the end of the epoch.

    The model must be compiled with an optimizer built with ``use_ema=True`` (any Keras optimizer, a
    `keras_seq.discriminative` one included). Callbacks that read the weights at the end of an epoch and
    should keep the validated ones (``ModelCheckpoint``, ``EarlyStopping(restore_best_weights=True)``)
    go before it in the callback list; a backup for resuming (``BackupAndRestore``) goes after it, so a
    resumed run continues from the weights training had. When ``fit`` ends the model holds the average
    (Keras' own ``finalize_variable_values``), unless a callback restores other weights.

    Keras writes the average back to ``model.trainable_weights`` when ``fit`` ends, so every layer the
    optimizer was built with must be trainable then: `GradualUnfreezing` gives the layers their own
    flags back at the end of each epoch; a callback of your own that freezes layers must do the same.

    Example::

        >>> import numpy as np, keras, keras_seq
        >>> model = keras_seq.build_classifier(50, 2, cell="gru", units=4, embed_dim=4)
        >>> model.compile(keras.optimizers.Adam(0.01, use_ema=True, ema_momentum=0.9),
        ...               "sparse_categorical_crossentropy")
        >>> ids, labels = np.random.default_rng(0).integers(1, 50, (8, 5)), np.arange(8) % 2
        >>> history = model.fit(ids, labels, validation_data=(ids, labels), epochs=2, verbose=0,
        ...                     callbacks=[keras_seq.ValidateMovingAverage()])
        >>> len(history.history["val_loss"])
        2
    """

    def __init__(self) -> None:
        super().__init__()
        self._fitting = False
        self._own: list | None = None  # the training weights while the average is in the model

    def on_train_begin(self, logs=None) -> None:
        optimizer = self.model.optimizer
        if not optimizer.built:
            optimizer.build(self.model.trainable_variables)
        if not moving_averages(optimizer):
            raise ValueError(
                "ValidateMovingAverage needs an optimizer with a moving average of the weights: "
                "compile with e.g. keras.optimizers.AdamW(..., use_ema=True, ema_momentum=0.999)"
            )
        self._fitting, self._own = True, None  # (an interrupted fit may have left the average in)

    def on_test_begin(self, logs=None) -> None:
        if not self._fitting or self._own is not None:
            return  # an evaluate() outside fit: the model already holds what fit left
        pairs = moving_averages(self.model.optimizer)
        self._own = [keras.ops.copy(variable.value) for variable, _ in pairs]
        for variable, average in pairs:
            variable.assign(keras.ops.copy(average.value))  # a buffer of its own: JAX donates both to a step

    def on_epoch_end(self, epoch, logs=None) -> None:
        if self._own is not None:  # this epoch validated: training goes on from its own weights
            for (variable, _), own in zip(moving_averages(self.model.optimizer), self._own, strict=True):
                variable.assign(own)
            self._own = None

    def on_train_end(self, logs=None) -> None:
        self._own = None  # Keras has written the average in (finalize_variable_values): keep it
        self._fitting = False
