"""keras-seq's benchmarks: run each as a module from the repository root, e.g.
``python -m benchmarks.bench_layers``; each prints its ratios against the reference it
measures in the same run and writes ``benchmarks/results/<script>[-<subject>].json``.
What each measures, and its latest figure: benchmarks/README.md."""

import os
from pathlib import Path

# the shipped configs read ${KERAS_SEQ_DATA}/...: by default the shared/data folder beside the checkout
os.environ.setdefault("KERAS_SEQ_DATA", str(Path(__file__).resolve().parents[2] / "shared" / "data"))
