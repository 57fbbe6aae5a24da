"""What every benchmark shares: one timer, the results folder, and the machine's description."""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"


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


def result_file(script: str, subject: str | None = None) -> Path:
    """``benchmarks/results/<script>[-<subject>].json``: the one current result of a benchmark (per
    backend or config where it runs on several); a rerun replaces it, git keeps the history."""
    return RESULTS / (f"{script}-{subject}.json" if subject else f"{script}.json")


def write_result(path: Path, result: dict) -> Path:
    """`result` as indented JSON at `path`, with the machine it was measured on."""
    from keras_seq.pipelines.precision import machine_summary

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"machine": machine_summary(), **result}, indent=2) + "\n", encoding="utf-8")
    return path
