"""The same config trained with Elman, GRU and LSTM, side by side.

    python -m benchmarks.bench_cells ewt_upos --out runs/cells [--set key=value ...]

Prints a Markdown table (main metric, best validation loss, epochs, seconds,
parameters) and writes it with the metrics to benchmarks/results/bench_cells-<config>.json.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

MAIN_METRIC = {"classify": ("test", "accuracy"), "tag": ("test", "token_accuracy"), "lm": ("validation", "loss_nats")}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config")
    p.add_argument("--out", required=True)
    p.add_argument("--set", action="append", default=[])
    p.add_argument("--cells", default="elman,gru,lstm")
    args = p.parse_args(argv)

    from keras_seq.pipelines.config import load_config
    from keras_seq.pipelines.config import resolve_config as _resolve_config
    from keras_seq.pipelines.train import train_run

    path = _resolve_config(args.config)
    rows = {}
    for cell in args.cells.split(","):
        config = load_config(path, [*args.set, f'model.cell="{cell}"'])
        rows[cell] = train_run(config, Path(args.out) / cell, verbose=2)
    split, key = MAIN_METRIC[config["task"]]
    lines = [f"| cell | {split} {key} | best val loss | epochs | train s | parameters |", "|---|---|---|---|---|---|"]
    for cell, m in rows.items():
        lines.append(
            f"| {cell} | {m[split][key]:.4f} | {m['best_val_loss']:.4f} | {m['epochs_run']} | "
            f"{m['train_seconds']:.0f} | {m['parameters']:,} |"
        )
    table = "\n".join(lines)
    print(table)
    results = Path(__file__).resolve().parent / "results"
    results.mkdir(exist_ok=True)
    (results / f"bench_cells-{path.stem}.json").write_text(
        json.dumps({"config": path.stem, "overrides": args.set, "table": table, "runs": rows}, indent=2) + "\n"
    )


if __name__ == "__main__":
    main()
