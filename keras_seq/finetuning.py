"""ULMFiT's fine-tuning tools (Howard & Ruder 2018, "Universal Language Model Fine-tuning for Text
Classification") as Keras pieces that work in any user's ``fit``, on every backend:

- `layer_groups`: a model's weighted layers in groups from the input up (embeddings, one group per
  recurrent level, the head);
- `discriminative`: an optimizer whose learning rate is divided by ``decay`` per group below the top
  (discriminative fine-tuning, ULMFiT's 2.6);
- `SlantedTriangular`: the slanted triangular learning-rate schedule;
- `GradualUnfreezing`: a callback that trains the top group first and unfreezes one group more every
  ``epochs_per_group`` epochs.

Concat pooling (last, max and mean of the top layer's outputs) is ``SequencePooling("concat")``.

Example (a user's own ``fit``)::

    >>> import numpy as np, keras, keras_seq
    >>> model = keras_seq.build_classifier(50, 2, cell="gru", units=4, embed_dim=4, pooling="concat")
    >>> steps = 4
    >>> adam = keras.optimizers.Adam(keras_seq.SlantedTriangular(0.01, total_steps=steps))
    >>> model.compile(keras_seq.discriminative(adam, model), "sparse_categorical_crossentropy")
    >>> ids, labels = np.random.default_rng(0).integers(1, 50, (8, 5)), np.arange(8) % 2
    >>> history = model.fit(ids, labels, batch_size=4, epochs=2, verbose=0,
    ...                     callbacks=[keras_seq.GradualUnfreezing()])
    >>> len(history.history["loss"])
    2
"""

from __future__ import annotations

import logging
import math
from typing import Any

import keras
from keras import ops

from keras_seq.charcontext import ContextualCharEmbedding
from keras_seq.charwords import CharacterWordEncoder
from keras_seq.recurrent import Recurrent

__all__ = ["layer_groups", "discriminative", "SlantedTriangular", "GradualUnfreezing"]

logger = logging.getLogger(__name__)

#: ULMFiT's factor between the learning rates of neighbouring layer groups.
ULMFIT_DECAY = 2.6


def is_recurrent_layer(layer) -> bool:
    """A recurrent layer of this package or Keras, or a `Bidirectional` wrapper of one."""
    return isinstance(layer, (Recurrent, keras.layers.RNN, keras.layers.Bidirectional))


_INPUT_LAYERS = (keras.layers.Embedding, CharacterWordEncoder, ContextualCharEmbedding)


def layer_groups(model: keras.Model) -> list[list[str]]:
    """The names of `model`'s top-level layers that hold weights, grouped from the input up: the input
    group (embeddings, character encoders), one group per recurrent layer in order (a `Bidirectional`
    wrapper is one group), then the head (everything above). Empty groups are left out.

    >>> import keras_seq
    >>> keras_seq.layer_groups(keras_seq.build_classifier(50, 2, units=4, embed_dim=4, depth=2))
    [['embedding'], ['bi_lstm_0'], ['bi_lstm_1'], ['probabilities']]
    """
    inputs, recurrent, head = [], [], []
    for layer in model.layers:
        if not layer.weights:
            continue
        if isinstance(layer, _INPUT_LAYERS) and not recurrent and not head:
            inputs.append(layer.name)
        elif is_recurrent_layer(layer) and not head:
            recurrent.append([layer.name])
        else:
            head.append(layer.name)
    return [group for group in (inputs, *recurrent, head) if group]


def _rates(groups: list[list[str]], decay: float) -> dict[str, float]:
    """Layer name -> learning-rate factor: 1 for the top group, 1 / decay**k for the k-th group below it."""
    if not decay or decay < 1:
        raise ValueError(f"`decay` must be >= 1 (ULMFiT: {ULMFIT_DECAY}); received decay={decay!r}.")
    top = len(groups) - 1
    return {name: float(decay ** -(top - i)) for i, group in enumerate(groups) for name in group}


class _LayerRates:
    """Mixed in before a Keras optimizer: each variable's update uses the learning rate times the factor
    of the top-level layer its path starts with (1 for a variable of no named layer). Variables of a
    factor-0 layer are not updated at all (their optimizer slots stay as they are)."""

    def __init__(self, *args: Any, layer_rates: dict[str, float] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.layer_rates = {str(k): float(v) for k, v in (layer_rates or {}).items()}
        #: Layers not updated for now (`GradualUnfreezing` on JAX); not saved with the optimizer.
        self.frozen: frozenset[str] = frozenset()
        bad = {k: v for k, v in self.layer_rates.items() if not (math.isfinite(v) and v >= 0)}
        if bad:
            raise ValueError(f"`layer_rates` must be finite factors >= 0; received {bad}.")

    def rate_of(self, variable) -> float:
        parts = str(getattr(variable, "path", "") or getattr(variable, "name", "")).split("/")
        for part in parts:  # the top-level layer first; a nested model's variables one level down
            if part in self.frozen:
                return 0.0
            if part in self.layer_rates:
                return self.layer_rates[part]
        return 1.0

    def _backend_update_step(self, grads, trainable_variables, learning_rate):
        groups: dict[float, tuple[list, list]] = {}
        for grad, variable in zip(grads, trainable_variables):
            pair = groups.setdefault(self.rate_of(variable), ([], []))
            pair[0].append(grad)
            pair[1].append(variable)
        for rate, (group_grads, group_variables) in groups.items():
            if rate == 0.0:
                continue
            super()._backend_update_step(group_grads, group_variables, learning_rate * rate)

    def _apply_weight_decay(self, variables):
        super()._apply_weight_decay([v for v in variables if self.rate_of(v) != 0.0])

    def get_config(self) -> dict:
        return {**super().get_config(), "layer_rates": dict(self.layer_rates)}


def _with_layer_rates(base: type) -> type:
    name = f"Discriminative{base.__name__}"
    cls = type(
        name,
        (_LayerRates, base),
        {
            "__module__": __name__,
            "__doc__": f"`keras.optimizers.{base.__name__}` with a learning-rate factor per layer "
            "(`keras_seq.discriminative` makes one).",
        },
    )
    return keras.saving.register_keras_serializable(package="keras_seq", name=name)(cls)


# One registered class per built-in optimizer, so a saved model's optimizer loads back.
_DISCRIMINATIVE = {
    base: _with_layer_rates(base)
    for base in (
        keras.optimizers.Adam,
        keras.optimizers.AdamW,
        keras.optimizers.Adamax,
        keras.optimizers.Nadam,
        keras.optimizers.SGD,
        keras.optimizers.RMSprop,
        keras.optimizers.Adagrad,
        keras.optimizers.Lion,
    )
}


def discriminative(
    optimizer: keras.optimizers.Optimizer,
    model: keras.Model | None = None,
    *,
    decay: float = ULMFIT_DECAY,
    groups: list[list[str]] | None = None,
    layer_rates: dict[str, float] | None = None,
) -> keras.optimizers.Optimizer:
    """A copy of `optimizer` (a built-in Keras optimizer, with its settings and schedule) whose learning
    rate is divided by `decay` for each layer group below the top: discriminative fine-tuning.

    Groups come from `groups` (lists of layer names, from the input up), else from
    ``layer_groups(model)``; `layer_rates` (layer name -> factor) sets the factors directly instead.
    Decoupled weight decay (AdamW) shrinks every variable of a nonzero factor at the optimizer's own
    rate; a factor of 0 leaves a layer untouched.

    >>> import keras, keras_seq
    >>> model = keras_seq.build_classifier(50, 2, units=4, embed_dim=4)
    >>> opt = keras_seq.discriminative(keras.optimizers.Adam(1e-3), model, decay=2.0)
    >>> sorted(opt.layer_rates.items())
    [('bi_lstm_0', 0.5), ('embedding', 0.25), ('probabilities', 1.0)]
    """
    base = type(optimizer)
    if isinstance(optimizer, _LayerRates):
        base = next(b for b in base.__mro__[1:] if b in _DISCRIMINATIVE)
    if base not in _DISCRIMINATIVE:
        raise ValueError(
            f"discriminative learning rates work with Keras' built-in optimizers "
            f"({', '.join(b.__name__ for b in _DISCRIMINATIVE)}); received {base.__name__}."
        )
    if layer_rates is None:
        if groups is None:
            if model is None:
                raise ValueError("give `model`, `groups` or `layer_rates`: the layers the factors apply to.")
            groups = layer_groups(model)
        layer_rates = _rates(groups, decay)
    config = optimizer.get_config()
    config.pop("layer_rates", None)
    if isinstance(optimizer._learning_rate, keras.optimizers.schedules.LearningRateSchedule):
        config["learning_rate"] = optimizer._learning_rate  # the schedule itself, not its config
    return _DISCRIMINATIVE[base](layer_rates=layer_rates, **config)


@keras.saving.register_keras_serializable(package="keras_seq")
class SlantedTriangular(keras.optimizers.schedules.LearningRateSchedule):
    """ULMFiT's slanted triangular learning rate: a short linear rise, then a long linear fall.

    With T = ``total_steps``, cut = floor(T * ``cut_fraction``) and t the step::

        p   = t / cut                            if t < cut
              1 - (t - cut) / (T - cut)           otherwise (clipped to [0, 1])
        η_t = max_learning_rate * (1 + p * (ratio - 1)) / ratio

    so the rate starts and ends at max_learning_rate / ratio and peaks at step cut.

    >>> import keras_seq
    >>> schedule = keras_seq.SlantedTriangular(0.01, total_steps=100, cut_fraction=0.1, ratio=32)
    >>> [round(float(schedule(t)), 5) for t in (0, 10, 100)]
    [0.00031, 0.01, 0.00031]
    """

    def __init__(
        self, max_learning_rate: float, total_steps: int, cut_fraction: float = 0.1, ratio: float = 32.0
    ) -> None:
        if total_steps < 1:
            raise ValueError(f"`total_steps` must be >= 1; received total_steps={total_steps!r}.")
        if not 0 < cut_fraction < 1:
            raise ValueError(f"`cut_fraction` must be in (0, 1); received cut_fraction={cut_fraction!r}.")
        if ratio < 1:
            raise ValueError(f"`ratio` must be >= 1; received ratio={ratio!r}.")
        self.max_learning_rate = float(max_learning_rate)
        self.total_steps = int(total_steps)
        self.cut_fraction = float(cut_fraction)
        self.ratio = float(ratio)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        cut = float(max(1, math.floor(self.total_steps * self.cut_fraction)))
        fall = float(max(1.0, self.total_steps - cut))
        p = ops.where(step < cut, step / cut, 1.0 - (step - cut) / fall)
        p = ops.clip(p, 0.0, 1.0)
        return self.max_learning_rate * (1.0 + p * (self.ratio - 1.0)) / self.ratio

    def get_config(self) -> dict:
        return {
            "max_learning_rate": self.max_learning_rate,
            "total_steps": self.total_steps,
            "cut_fraction": self.cut_fraction,
            "ratio": self.ratio,
        }


class GradualUnfreezing(keras.callbacks.Callback):
    """Trains only the top layer group in the first ``epochs_per_group`` epochs, then unfreezes the next
    group down every ``epochs_per_group`` epochs, until every group trains (ULMFiT's gradual unfreezing).

    The frozen set depends only on the epoch number, so a resumed ``fit(initial_epoch=...)`` freezes as
    the uninterrupted run did. Layers a user froze before stay frozen; every layer gets back its own
    ``trainable`` flag at the end of each epoch (the callbacks that save the model see it) and when
    training ends. ``groups``: lists of layer names from the input up (default
    `layer_groups`).

    On TensorFlow and PyTorch a frozen layer is made non-trainable, so no gradient is computed for it.
    On JAX, Keras' stateless optimizer must update the variables it was built with, so the layers are
    frozen in the optimizer instead (their gradients are computed, then not applied): there the model
    must be compiled with an optimizer from `discriminative` (``decay=1`` for one learning rate).
    """

    def __init__(self, groups: list[list[str]] | None = None, epochs_per_group: int = 1) -> None:
        super().__init__()
        if epochs_per_group < 1:
            raise ValueError(f"`epochs_per_group` must be >= 1; received epochs_per_group={epochs_per_group!r}.")
        self.groups = groups
        self.epochs_per_group = int(epochs_per_group)
        self._own_flags: dict[str, bool] = {}

    def on_train_begin(self, logs=None) -> None:
        model = self.model
        groups = self.groups or layer_groups(model)
        names = {layer.name for layer in model.layers}
        missing = [name for group in groups for name in group if name not in names]
        if missing:
            raise ValueError(f"GradualUnfreezing: the model has no layers named {missing}.")
        self._resolved = groups
        self._own_flags = {name: model.get_layer(name).trainable for group in groups for name in group}
        optimizer = model.optimizer
        self._in_optimizer = keras.backend.backend() == "jax"
        if self._in_optimizer and not isinstance(optimizer, _LayerRates):
            raise ValueError(
                "GradualUnfreezing on JAX freezes layers in the optimizer: compile the model with "
                "keras_seq.discriminative(optimizer, model) (decay=1 keeps one learning rate)"
            )
        if optimizer is not None and not optimizer.built:
            # built with every variable while all still train: a frozen one still has its slots later
            optimizer.build(model.trainable_variables)
        self._traced_frozen: frozenset | None = None  # unknown: the first epoch traces again

    def unfrozen_groups(self, epoch: int) -> int:
        """How many groups (from the top) train in `epoch` (0-based)."""
        return min(len(self._resolved), 1 + epoch // self.epochs_per_group)

    def on_epoch_begin(self, epoch, logs=None) -> None:
        training = self.unfrozen_groups(epoch)
        frozen = frozenset(name for group in self._resolved[: len(self._resolved) - training] for name in group)
        if self._in_optimizer:
            self.model.optimizer.frozen = frozen
        else:
            for name, own in self._own_flags.items():
                self.model.get_layer(name).trainable = own and name not in frozen
        if frozen != self._traced_frozen:  # the train function was traced with another frozen set
            logger.info("epoch %d: training the top %d of %d layer groups", epoch + 1, training, len(self._resolved))
            self.model.make_train_function(force=True)
            self._traced_frozen = frozen

    def on_epoch_end(self, epoch, logs=None) -> None:
        # between epochs every layer has its own flag: what the checkpoints see, and what Keras' end of fit
        # (an optimizer's moving average, written back to the trainable weights) expects
        self._give_flags_back()

    def on_train_end(self, logs=None) -> None:
        self._give_flags_back()

    def _give_flags_back(self) -> None:
        if self._in_optimizer:
            self.model.optimizer.frozen = frozenset()
        for name, flag in self._own_flags.items():
            self.model.get_layer(name).trainable = flag
