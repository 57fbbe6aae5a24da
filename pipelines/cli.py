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


def _cmd_data_stats(args: argparse.Namespace) -> int:
    import json

    from pipelines.stats import corpus_stats, format_stats

    options = {}
    if args.text_column:
        options["text_column"] = args.text_column
    if args.label_column:
        options["label_column"] = args.label_column
    stats = corpus_stats(args.source, args.task, level=args.level, max_len=args.max_len,
                         vocab_size=args.vocab_size, min_count=args.min_count, batch_size=args.batch_size,
                         buckets=args.buckets, lower=args.lower, **options)
    print(json.dumps(stats) if args.json else format_stats(stats))
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

    data = sub.add_parser("data", help="data tools").add_subparsers(dest="data_command", required=True)
    stats = data.add_parser("stats", help="corpus statistics: sizes, lengths, <UNK> share, padding")
    stats.add_argument("source", help="a path (file, folder, .tar.gz) or tfds:NAME")
    stats.add_argument("--task", required=True, choices=["classify", "tag", "lm"])
    stats.add_argument("--level", default=None, choices=["word", "char"],
                       help="default: char for lm, word otherwise")
    stats.add_argument("--max-len", type=int, default=None, help="truncate examples to this many tokens")
    stats.add_argument("--lower", action=argparse.BooleanOptionalAction, default=None,
                       help="ASCII lower-casing (default: on for word level, off for char level)")
    stats.add_argument("--vocab-size", type=int, default=20000)
    stats.add_argument("--min-count", type=int, default=1)
    stats.add_argument("--batch-size", type=int, default=64)
    stats.add_argument("--buckets", type=int, default=12)
    stats.add_argument("--text-column", default=None, help="CSV/TSV/JSONL text column (default 'text')")
    stats.add_argument("--label-column", default=None, help="CSV/TSV/JSONL label column (default 'label')")
    stats.add_argument("--json", action="store_true", help="print one JSON object")
    stats.set_defaults(func=_cmd_data_stats)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "level", "unset") is None:
        args.level = "char" if args.task == "lm" else "word"
    if getattr(args, "lower", "unset") is None:
        args.lower = args.level == "word"
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as error:
        print(f"keras-seq {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # anything else: one clear line, the traceback on request
        if os.environ.get("KERAS_SEQ_DEBUG"):
            raise
        first_line = (str(error).strip().splitlines() or [""])[0][:500]
        print(f"keras-seq {args.command}: error ({type(error).__name__}): {first_line}\n"
              "(set KERAS_SEQ_DEBUG=1 to see the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
