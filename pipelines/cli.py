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


CONFIG_DIR = __import__("pathlib").Path(__file__).resolve().parent / "configs"


def _resolve_config(name: str):
    """A path, or the name of a config shipped in pipelines/configs/."""
    from pathlib import Path

    path = Path(name)
    if path.exists():
        return path
    shipped = CONFIG_DIR / (name if name.endswith(".toml") else f"{name}.toml")
    if shipped.exists():
        return shipped
    raise FileNotFoundError(f"no config {name!r} (neither a file nor one of "
                            f"{sorted(p.stem for p in CONFIG_DIR.glob('*.toml'))})")


def _cmd_train(args: argparse.Namespace) -> int:
    import json

    from pipelines.config import load_config
    from pipelines.train import train_run

    config = load_config(_resolve_config(args.config), args.set or [])
    if not config["data"]["source"]:
        raise ValueError("the config names no data.source (use --set data.source=PATH)")
    metrics = train_run(config, args.out, verbose=args.verbose)
    print(json.dumps(metrics, indent=2))
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    import json

    from pipelines.evaluate import evaluate_run

    result = evaluate_run(args.run_dir, args.source, split=args.split)
    print(json.dumps(result) if args.json else "\n".join(f"{k:>18}: {v}" for k, v in result.items()))
    return 0


def _cmd_generate(args: argparse.Namespace) -> int:
    from pipelines.generate import generate_text

    print(generate_text(args.run_dir, args.prompt, length=args.length, temperature=args.temperature,
                        beam=args.beam, seed=args.seed))
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from pipelines.demo import run_demo

    run_demo(args.out)
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
    demo = sub.add_parser("demo", help="the built-in demo: train on a generated corpus (no download)")
    demo.add_argument("--out", default="demo-out", help="folder for the data and the run (default demo-out)")
    demo.set_defaults(func=_cmd_demo)

    train = sub.add_parser("train", help="train a model from a config")
    train.add_argument("config", help="a TOML config file, or the name of a shipped one (e.g. imdb)")
    train.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config key (repeatable)")
    train.add_argument("--out", required=True, help="the run directory")
    train.add_argument("--verbose", type=int, default=1, choices=[0, 1, 2])
    train.set_defaults(func=_cmd_train)

    evaluate = sub.add_parser("evaluate", help="metrics of a trained run on a data source")
    evaluate.add_argument("run_dir")
    evaluate.add_argument("source", nargs="?", default=None, help="default: the run's own source")
    evaluate.add_argument("--split", default="test")
    evaluate.add_argument("--json", action="store_true")
    evaluate.set_defaults(func=_cmd_evaluate)

    generate = sub.add_parser("generate", help="continue a prompt with a trained language model")
    generate.add_argument("run_dir")
    generate.add_argument("--prompt", required=True)
    generate.add_argument("--length", type=int, default=200)
    how = generate.add_mutually_exclusive_group()
    how.add_argument("--temperature", type=float, default=None, help="sample at this temperature")
    how.add_argument("--beam", type=int, default=None, help="beam search with this width")
    generate.add_argument("--seed", type=int, default=0)
    generate.set_defaults(func=_cmd_generate)

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


def main(argv: list[str] | None = None, parse=None) -> int:
    """Runs one command; `parse` (argv -> namespace) lets a downstream room
    (export/cli.py) parse with its extended parser."""
    args = parse(argv) if parse else build_parser().parse_args(argv)
    if getattr(args, "level", "unset") is None:
        args.level = "char" if args.task == "lm" else "word"
    if getattr(args, "lower", "unset") is None:
        args.lower = args.level == "word"
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError, FileExistsError, TypeError) as error:
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
