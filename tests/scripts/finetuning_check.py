"""The fine-tuning tools in a user's own `fit`, on one backend (run by tests/layers/test_finetuning.py
once per backend, with KERAS_BACKEND set):

    python finetuning_check.py OUT_DIR

1. `discriminative`: one SGD step moves each variable by its layer's factor times what plain SGD moves it;
2. `GradualUnfreezing` with `SlantedTriangular` and concat pooling: in epoch k only the top k + 1 layer
   groups change; the layers get their own `trainable` back; a resumed fit freezes as the whole run did;
3. the compiled model saved as ``.keras`` loads back with the same optimizer class and factors;
4. `ValidateMovingAverage`: callbacks before it see the optimizer's moving average at the epoch's end,
   callbacks after it the training's own weights; validation ran on the average.

Prints one JSON object of the facts the test asserts.
"""

import json
import sys
from pathlib import Path

import keras
import numpy as np

import keras_seq

BACKEND = keras.backend.backend()
IDS = np.random.default_rng(0).integers(1, 60, (16, 7)).astype("int32")
IDS[::3, 5:] = 0  # padding the masks skip
LABELS = (np.arange(16) % 2).astype("int32")


def classifier(seed: int = 1) -> keras.Model:
    keras.utils.set_random_seed(seed)
    return keras_seq.build_classifier(60, 2, cell="gru", units=6, embed_dim=5, depth=1, pooling="concat")


def step_ratios() -> dict:
    """Per variable: (discriminative step) / (plain step), from the same start on the same batch."""
    moved = {}
    for name, make in (
        ("plain", lambda m: keras.optimizers.SGD(0.1)),
        ("disc", lambda m: keras_seq.discriminative(keras.optimizers.SGD(0.1), m, decay=2.0)),
    ):
        model = classifier()
        model.compile(make(model), "sparse_categorical_crossentropy")
        before = [np.array(v) for v in model.trainable_variables]
        model.train_on_batch(IDS, LABELS)
        moved[name] = {v.path: np.array(v) - b for v, b in zip(model.trainable_variables, before)}
    ratios = {}
    for path, step in moved["plain"].items():
        big = np.abs(step) > 1e-7
        ratios[path] = float(np.median(moved["disc"][path][big] / step[big])) if big.any() else None
    return ratios


class Snapshots(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.weights = [self._take()]

    def on_epoch_end(self, epoch, logs=None):
        self.weights.append(self._take())

    def _take(self):
        return {layer.name: [np.array(w) for w in layer.get_weights()] for layer in self.model.layers if layer.weights}


def changed_per_epoch(model, epochs, initial_epoch=0) -> list:
    snapshots = Snapshots()
    model.fit(
        IDS,
        LABELS,
        batch_size=8,
        epochs=epochs,
        initial_epoch=initial_epoch,
        verbose=0,
        callbacks=[keras_seq.GradualUnfreezing(), snapshots],
    )
    out = []
    for before, after in zip(snapshots.weights, snapshots.weights[1:]):
        out.append(sorted(n for n in before if any(not np.array_equal(a, b) for a, b in zip(before[n], after[n]))))
    return out


class Seen(keras.callbacks.Callback):
    """The weights at the start of each validation and at the end of each epoch."""

    def __init__(self):
        super().__init__()
        self.validating, self.epoch_end = [], []

    def on_test_begin(self, logs=None):
        self.validating.append([np.array(v) for v in self.model.trainable_variables])

    def on_epoch_end(self, epoch, logs=None):
        self.epoch_end.append([np.array(v) for v in self.model.trainable_variables])


def fit_validated(model, epochs: int, callbacks: list):
    return model.fit(
        IDS, LABELS, batch_size=4, epochs=epochs, verbose=0, validation_data=(IDS, LABELS), callbacks=callbacks
    )


def moving_average_facts() -> dict:
    model = classifier()
    model.compile(keras.optimizers.Adam(0.05, use_ema=True, ema_momentum=0.8), "sparse_categorical_crossentropy")
    before, after = Seen(), Seen()
    history = fit_validated(model, 3, [before, keras_seq.ValidateMovingAverage(), after])
    averages = [np.array(a) for a in model.optimizer._model_variables_moving_average]
    final = [np.array(v) for v in model.trainable_variables]
    same = lambda xs, ys: all(np.allclose(x, y, atol=1e-6) for x, y in zip(xs, ys, strict=True))  # noqa: E731
    gap = max(float(np.abs(x - y).max()) for x, y in zip(before.validating[-1], after.validating[-1], strict=True))
    # a fit that ends while gradual unfreezing still freezes two of the three groups: Keras writes the
    # average back to the trainable weights, which must be all of them again by then
    frozen = classifier()
    adam = keras.optimizers.Adam(0.05, use_ema=True, ema_momentum=0.8)
    frozen.compile(keras_seq.discriminative(adam, frozen, decay=1), "sparse_categorical_crossentropy")
    fit_validated(frozen, 1, [keras_seq.GradualUnfreezing(), keras_seq.ValidateMovingAverage()])
    ends_frozen = same(
        [np.array(v) for v in frozen.trainable_variables],
        [np.array(a) for a in frozen.optimizer._model_variables_moving_average],
    )
    return {
        "ends_while_frozen_with_the_average": ends_frozen,
        "epoch_end_before_is_average": same(before.epoch_end[-1], averages),
        "validated_average": same(after.validating[-1], averages),
        "epoch_end_after_is_own": all(
            same(own, end) for own, end in zip(before.validating, after.epoch_end, strict=True)
        ),
        "own_minus_average": gap,
        "final_is_average": same(final, averages),
        "val_loss_matches": bool(
            np.isclose(history.history["val_loss"][-1], model.evaluate(IDS, LABELS, verbose=0), rtol=1e-5)
        ),
    }


def run(out: Path) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    facts = {"backend": BACKEND, "ratios": step_ratios(), "moving_average": moving_average_facts()}
    model = classifier()
    facts["groups"] = keras_seq.layer_groups(model)
    schedule = keras_seq.SlantedTriangular(0.01, total_steps=6)
    model.compile(keras_seq.discriminative(keras.optimizers.Adam(schedule), model), "sparse_categorical_crossentropy")
    facts["changed"] = changed_per_epoch(model, 3)
    facts["trainable_after"] = [layer.trainable for layer in model.layers]
    resumed = classifier()
    resumed.compile(
        keras_seq.discriminative(keras.optimizers.Adam(1e-2), resumed, decay=1), "sparse_categorical_crossentropy"
    )
    facts["changed_resumed"] = changed_per_epoch(resumed, 3, initial_epoch=1)
    model.save(out / "model.keras")
    loaded = keras.saving.load_model(out / "model.keras")
    facts["loaded_optimizer"] = type(loaded.optimizer).__name__
    facts["loaded_rates"] = loaded.optimizer.layer_rates
    facts["loaded_schedule"] = type(loaded.optimizer._learning_rate).__name__
    facts["same_predictions"] = bool(np.allclose(loaded.predict(IDS, verbose=0), model.predict(IDS, verbose=0)))
    return facts


if __name__ == "__main__":
    print(json.dumps(run(Path(sys.argv[1]))))
