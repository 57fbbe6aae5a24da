"""The memory experiment: the adding problem (Hochreiter & Schmidhuber, 1997).

Each input is T steps of two features: a value drawn uniformly from [0, 1) and
a marker that is 1 at exactly two steps -- one in the first half, one in the
second -- and 0 elsewhere. The target is the sum of the two marked values.
Always predicting 1 (the mean of the target) gives MSE = Var(U + U') = 1/6
~= 0.167; a model beats it only by remembering the first marked value across
up to T steps. Plain Elman RNNs are known to fail at moderate T; gated cells
(GRU, LSTM) do not.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

BASELINE_MSE = 1.0 / 6.0


def adding_problem(n: int, steps: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """`n` sequences of length `steps`: inputs (n, steps, 2) float32, targets (n, 1)."""
    if steps < 2:
        raise ValueError(f"`steps` must be at least 2 for the adding problem; received steps={steps}.")
    rng = np.random.default_rng(seed)
    values = rng.random((n, steps), dtype=np.float32)
    half = steps // 2
    first = rng.integers(0, half, size=n)
    second = rng.integers(half, steps, size=n)
    markers = np.zeros((n, steps), np.float32)
    markers[np.arange(n), first] = 1.0
    markers[np.arange(n), second] = 1.0
    inputs = np.stack([values, markers], axis=-1)
    targets = (values[np.arange(n), first] + values[np.arange(n), second])[:, None]
    return inputs, targets.astype(np.float32)


@dataclass
class MemoryResult:
    cell: str
    test_mse: float
    seconds: float
    steps: int


def run_memory_experiment(
    cells: tuple[str, ...] = ("elman", "gru", "lstm"),
    steps: int = 50,
    units: int = 32,
    train_size: int = 20000,
    test_size: int = 2000,
    batch_size: int = 64,
    epochs: int = 4,
    learning_rate: float = 3e-3,
    seed: int = 0,
    verbose: int = 0,
) -> list[MemoryResult]:
    """Trains each cell for the same fixed budget and returns its test MSE."""
    import keras

    import keras_seq

    layer_classes = {"elman": keras_seq.Elman, "gru": keras_seq.GRU, "lstm": keras_seq.LSTM}
    unknown = [c for c in cells if c not in layer_classes]
    if unknown:
        raise ValueError(f"unknown cell(s) {unknown}; choose from {sorted(layer_classes)}")
    x_train, y_train = adding_problem(train_size, steps, seed)
    x_test, y_test = adding_problem(test_size, steps, seed + 1)
    results = []
    for name in cells:
        keras.utils.set_random_seed(seed)
        model = keras.Sequential(
            [keras.Input((steps, 2)), layer_classes[name](units), keras.layers.Dense(1)], name=f"adding_{name}"
        )
        model.compile(optimizer=keras.optimizers.Adam(learning_rate, clipnorm=1.0), loss="mse", jit_compile=True)
        start = time.perf_counter()
        model.fit(x_train, y_train, batch_size=batch_size, epochs=epochs, verbose=verbose, shuffle=True)
        seconds = time.perf_counter() - start
        mse = float(model.evaluate(x_test, y_test, batch_size=500, verbose=0))
        results.append(MemoryResult(name, mse, seconds, epochs * (train_size // batch_size)))
    return results


def format_table(results: list[MemoryResult], steps: int) -> str:
    lines = [
        f"Adding problem, T={steps}: test MSE after the same training budget (predicting 1 scores {BASELINE_MSE:.3f})",
        f"{'cell':6} {'test MSE':>9} {'vs baseline':>12} {'train s':>8}",
    ]
    for r in results:
        lines.append(f"{r.cell:6} {r.test_mse:9.4f} {r.test_mse / BASELINE_MSE:11.1%} {r.seconds:8.1f}")
    return "\n".join(lines)
