"""What a fresh process pays to start: ``import keras`` (TensorFlow backend) and ``import
keras_seq.pipelines.train`` (what ``keras-seq train`` loads) in new interpreters, as installed,
and with each package that TensorFlow or Keras imports only because it is installed (scikit-learn
for Keras' wrappers, pandas for its data adapters, JAX for TensorFlow Lite's utilities) made
unimportable, one at a time and all together.

    python -m benchmarks.bench_import [--repeats 7]

Reference: the import as installed, in the same run; the variants are rotated each round so that a
slow minute of the machine falls on all of them. Prints the median CPU seconds (user + system) and
wall seconds of each, and the ratio to the reference; writes benchmarks/results/bench_import.json.
A package that is not installed has no variant of its own (it costs nothing).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

OPTIONAL = ("sklearn", "pandas", "jax")  # imported by TF / Keras when present, never needed by keras_seq's core
# Keras alone, and what `keras-seq train` imports before it reads its config
TARGETS = {"keras": "import keras", "keras_seq.pipelines.train": "import keras_seq.pipelines.train"}


def _child_seconds(code: str) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of one fresh interpreter running `code`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "bench_import.json"))
    args = parser.parse_args()
    from keras_seq.pipelines.precision import machine_summary

    present = [name for name in OPTIONAL if importlib.util.find_spec(name) is not None]
    variants = {"as installed": []} | {f"without {name}": [name] for name in present}
    if len(present) > 1:
        variants["without " + ", ".join(present)] = present
    samples: dict = {(t, v): [] for t in TARGETS for v in variants}
    for round_ in range(args.repeats):
        names = list(variants)
        names = names[round_ % len(names) :] + names[: round_ % len(names)]
        for target, statement in TARGETS.items():
            for variant in names:
                blocked = "".join(f"sys.modules[{name!r}] = None; " for name in variants[variant])
                samples[(target, variant)].append(_child_seconds(f"import sys; {blocked}{statement}"))
    rows = []
    for target in TARGETS:
        reference = statistics.median(cpu for cpu, _ in samples[(target, "as installed")])
        for variant in variants:
            cpu = statistics.median(c for c, _ in samples[(target, variant)])
            wall = statistics.median(w for _, w in samples[(target, variant)])
            rows.append(
                {"import": target, "variant": variant, "cpu_s": round(cpu, 3), "wall_s": round(wall, 3),
                 "cpu_vs_installed": round(cpu / reference, 3)}
            )  # fmt: skip
            print(f"{target:26} {variant:32} cpu {cpu:6.2f} s  wall {wall:6.2f} s  {cpu / reference:5.2f}x")
    result = {
        "machine": machine_summary(),
        "command": "python -m benchmarks.bench_import --repeats " + str(args.repeats),
        "installed_optional_packages": present,
        "rows": rows,
    }
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
