"""The time budget of a training run (``train.max_minutes``) and the learning-rate schedule over it
(``train.lr_schedule = "budget"``).

Li, Yumer & Ramanan (2020), *Budgeted Training: Rethinking Deep Neural Network Optimization Under
Resource Constraints* (ICLR), found that when a fixed budget, not convergence, ends training, a
learning rate that falls linearly to zero at the end of the budget beats step and plateau schedules.
Our configs end on a wall-clock budget, so the budget here is seconds of training, the same clock
that stops the run and that a resumed run carries on (``BackupState.train_seconds``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from time import monotonic

import keras

logger = logging.getLogger(__name__)

LR_SCHEDULES = ("budget", "slanted_triangular")
LR_FLOOR = 0.01  # the schedule's last epochs train at no less than this fraction of train.learning_rate


def budget_rate(base: float, spent: float, epoch_seconds: float | None, budget: float) -> float:
    """The learning rate of the next epoch: ``base * max(LR_FLOOR, 1 - middle / budget)``, where
    ``middle = spent + epoch_seconds / 2`` predicts the middle of that epoch in training seconds
    (``epoch_seconds``: the mean epoch so far; None before the first epoch, which trains at ``base``)."""
    if epoch_seconds is None:
        return float(base)
    return float(base) * max(LR_FLOOR, 1.0 - (spent + epoch_seconds / 2.0) / budget)


class TrainingBudget(keras.callbacks.Callback):
    """Stops a run at its time budget, and with ``schedule=True`` sets each epoch's learning rate
    by `budget_rate`.

    Without the schedule, the run stops after the epoch that passes ``minutes`` (as it always has).
    With it, the run also stops when the next epoch's predicted middle falls past the budget, since
    that epoch would train at the floor: a scheduled run ends within half an epoch of its budget.
    Several workers decide alike: the stop by ``agree`` (`Placement.any`), the clock by ``chiefs``
    (`Placement.chiefs`: the chief's seconds on every worker, so every replica applies one rate).
    The next epoch's length is predicted from the last one, and the rate never rises.
    """

    def __init__(
        self,
        minutes: float | None,
        spent_seconds: float = 0.0,
        epochs_done: int = 0,
        schedule: bool = False,
        agree: Callable[[bool], bool] = bool,
        chiefs: Callable[[list[float]], list[float]] = lambda values: values,
    ) -> None:
        super().__init__()
        if schedule and minutes is None:
            raise ValueError('train.lr_schedule = "budget" needs train.max_minutes (the budget it decays over)')
        self.budget = None if minutes is None else 60.0 * float(minutes)
        self.spent_before, self.epochs_before = float(spent_seconds), int(epochs_done)
        self.schedule, self.agree, self.chiefs = schedule, agree, chiefs
        self.base: float | None = None
        self._started = monotonic()
        self._epochs = 0
        self._last_epoch: float | None = None
        self._epoch_started = 0.0
        self._rate = float("inf")

    def _spent(self) -> float:
        return self.chiefs([self.spent_before + monotonic() - self._started])[0]

    def _epoch_seconds(self, spent: float) -> float | None:
        """The next epoch's predicted length: the last epoch's (the first one's includes tracing), or after
        a resume the run's mean so far."""
        if self._last_epoch is not None:
            return self._last_epoch
        done = self.epochs_before + self._epochs
        return spent / done if done else None

    def on_train_begin(self, logs=None):
        self._started = monotonic()
        if self.schedule:
            self.base = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_started = self._spent() if self.budget is not None else 0.0
        if self.schedule:
            spent = self._epoch_started
            # never up again when an epoch runs faster than the one before (the first one traces the graph)
            rate = self._rate = min(self._rate, budget_rate(self.base, spent, self._epoch_seconds(spent), self.budget))
            self.model.optimizer.learning_rate = rate
            logger.info("epoch %d: learning rate %.3g (%.0f of %.0f s spent)", epoch + 1, rate, spent, self.budget)

    def on_epoch_end(self, epoch, logs=None):
        self._epochs += 1
        if self.schedule and logs is not None:  # history.csv gets each epoch's rate
            logs["learning_rate"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        if self.budget is None:
            return
        spent = self._spent()
        self._last_epoch = spent - self._epoch_started
        stop = spent > self.budget
        if self.schedule:
            stop = stop or spent + self._epoch_seconds(spent) / 2.0 > self.budget
        if self.agree(stop):
            logger.info("time budget reached after epoch %d (%.0f of %.0f s); stopping", epoch + 1, spent, self.budget)
            self.model.stop_training = True
