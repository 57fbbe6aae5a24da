"""The `keras-seq` command line."""
from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _cmd_memory(args: argparse.Namespace) -> int:
    from pipelines.memory import format_table, run_memory_experiment

    cells = tuple(c.strip() for c in args.cells.split(",") if c.strip())
    results = run_memory_experiment(cells=cells, steps=args.steps, units=args.units, epochs=args.epochs,
                                    seed=args.seed, verbose=args.verbose)
    print(format_table(results, args.steps))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="keras-seq", description="Recurrent sequence models for Keras 3.")
    sub = parser.add_subparsers(dest="command", required=True)

    def add_memory_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--cells", default="elman,gru,lstm", help="comma-separated cells (default: all three)")
        p.add_argument("--steps", type=int, default=50, help="sequence length T (default 50)")
        p.add_argument("--units", type=int, default=32)
        p.add_argument("--epochs", type=int, default=4, help="passes over 20,000 generated sequences")
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--verbose", type=int, default=0, choices=[0, 1, 2])
        p.set_defaults(func=_cmd_memory)

    add_memory_args(sub.add_parser("memory", help="the adding-problem memory experiment (Elman vs GRU vs LSTM)"))
    add_memory_args(sub.add_parser("demo", help="the built-in demo (no download): currently the memory experiment"))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as error:
        print(f"keras-seq {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
