"""keras-seq's benchmarks: run each as a module from the repository root, e.g.
``python -m benchmarks.bench_layers``; each prints its ratios against the reference it
measures in the same run and writes ``benchmarks/results/<script>[-<subject>].json``.
What each measures, and its latest figure: benchmarks/README.md."""
