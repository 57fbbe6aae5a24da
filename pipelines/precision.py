"""`train.mixed_precision`: which Keras dtype policy a run trains under, and "auto", which takes
mixed_bfloat16 only where the hardware runs bf16 matmuls natively and, on a CPU, the model's
recurrent layers are wide enough to gain from it.

Why "auto" exists: bf16 matmuls pay where the CPU (AVX512_BF16, AMX) or GPU runs them in
hardware, and cost time where they are emulated (benchmarks/bench_training.py measures both
policies on the machine it runs on; figures in benchmarks/README.md). On a bf16 CPU they paid
only for wide layers: the casts around each step's small matmuls cost more than the matmuls
save below `AUTO_BF16_MIN_UNITS` units (the measured points are in benchmarks/README.md,
"Where the tuning tables come from"). A shipped config cannot know the machine, so it says "auto".
"""

from __future__ import annotations

import contextlib
import logging
import os
import platform
from pathlib import Path

logger = logging.getLogger(__name__)

PRECISIONS = ("auto", "float32", "mixed_bfloat16", "mixed_float16")
# CPU feature flags (Linux /proc/cpuinfo) under which oneDNN runs bf16 matmuls in hardware:
# x86 AVX512_BF16 (Cooper Lake, Sapphire Rapids, Zen 4) and AMX; Arm's BF16 extension (Armv8.6).
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16", "bf16")
CPUINFO = Path("/proc/cpuinfo")
AUTO_BF16_MIN_UNITS = 256  # "auto" on a bf16 CPU: narrower recurrent layers train in float32


def _cpuinfo_value(keys: tuple[str, ...], cpuinfo: Path | None) -> str | None:
    """The value of the first line of `cpuinfo` whose key is one of `keys`; None where there is
    no such line or no file (not Linux)."""
    try:
        text = (cpuinfo or CPUINFO).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in keys:
            return value.strip()
    return None


def cpu_flags(cpuinfo: Path | None = None) -> set[str]:
    """The feature flags of the first CPU in `cpuinfo` (``flags`` on x86, ``Features`` on Arm); empty
    where the file does not exist (not Linux)."""
    return set((_cpuinfo_value(("flags", "Features"), cpuinfo) or "").split())


def cpu_model(cpuinfo: Path | None = None) -> str:
    """The CPU's model name as the OS reports it (``platform.processor()`` elsewhere)."""
    return _cpuinfo_value(("model name",), cpuinfo) or platform.processor() or platform.machine()


def native_bfloat16() -> str | None:
    """Why this machine runs bf16 matmuls in hardware (``"GPU compute capability 8.0"``, ``"CPU flag
    avx512_bf16"``), or None where it would emulate them."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        capability = tf.config.experimental.get_device_details(gpus[0]).get("compute_capability")
        if capability and tuple(capability) >= (8, 0):  # Ampere and later have bf16 tensor cores
            return f"GPU compute capability {capability[0]}.{capability[1]}"
        return None
    flags = cpu_flags()
    found = [flag for flag in BF16_CPU_FLAGS if flag in flags]
    return f"CPU flag {found[0]}" if found else None


def resolve_precision(setting: str | None, units: int | None = None) -> tuple[str | None, str]:
    """The dtype policy a run trains under for the config's `train.mixed_precision` (None: float32),
    and why: ``"set in the config"``, or what "auto" found. `units`: the model's recurrent units
    (``model.units``), which "auto" weighs on a CPU."""
    if setting != "auto":
        return (None if setting in (None, "float32") else setting), "set in the config"
    reason = native_bfloat16()
    if reason and reason.startswith("CPU") and units is not None and units < AUTO_BF16_MIN_UNITS:
        reason = f"{reason}, but {units} recurrent units < {AUTO_BF16_MIN_UNITS}"
        logger.debug("train.mixed_precision = auto: float32 (%s; bf16 measured slower there)", reason)
        return None, reason
    if reason:
        logger.info("train.mixed_precision = auto: mixed_bfloat16 (%s)", reason)
        return "mixed_bfloat16", reason
    reason = f"no bf16 instructions on {cpu_model()}"
    # the default on most machines: said at debug level (metrics.json records it), not on every run
    logger.debug("train.mixed_precision = auto: float32 (%s; emulated bf16 is slower)", reason)
    return None, reason


def machine_summary() -> str:
    """One line for benchmark results: architecture, cores, CPU model and whether it has native bf16."""
    flags = [flag for flag in BF16_CPU_FLAGS if flag in cpu_flags()]
    return (
        f"{platform.machine()}, {os.cpu_count()} cores, {cpu_model()}, bf16 instructions: {', '.join(flags) or 'none'}"
    )


@contextlib.contextmanager
def precision(policy: str | None):
    """Keras' global dtype policy `policy` (None: float32) inside the block, the previous one after it."""
    import keras

    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(policy or "float32")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)
