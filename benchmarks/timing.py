"""The timer every benchmark shares: warm-up calls, then the timed ones (their median)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence


def timed(fn: Callable, inputs: Sequence | None = None, repeats: int = 20, warmup: int = 1) -> list[float]:
    """Seconds of each of `repeats` calls, after `warmup` untimed ones: ``fn()``, or ``fn(inputs[i])``
    cycling through `inputs`."""
    call = (lambda i: fn()) if inputs is None else (lambda i: fn(inputs[i % len(inputs)]))
    for i in range(warmup):
        call(i)
    times = []
    for i in range(repeats):
        start = time.perf_counter()
        call(i)
        times.append(time.perf_counter() - start)
    return times


def median_seconds(fn: Callable, inputs: Sequence | None = None, repeats: int = 20, warmup: int = 1) -> float:
    """The median of `timed`."""
    return statistics.median(timed(fn, inputs, repeats, warmup))
