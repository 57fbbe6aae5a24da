"""The pipelines' subcommands: ``train``, ``evaluate``, ``generate``, ``data stats``, ``memory``,
``data-service``.

Each calls one public function (`train_run`, `evaluate_run`, `generate_text`,
`corpus_stats`, `run_memory_experiment`, `run_dispatcher` / `run_worker`); nothing
heavy is imported until a command runs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path

from keras_seq import register_layers
from keras_seq.contracts import RunDirectory

CONFIG_DIR = Path(__file__).resolve().parent / "configs"


def shipped_configs() -> list[str]:
    return sorted(p.stem for p in CONFIG_DIR.glob("*.toml"))


def resolve_config(name: str) -> Path:
    """A path, or the name of a config shipped in keras_seq/pipelines/configs/."""
    path = Path(name)
    if path.exists():
        return path
    shipped = CONFIG_DIR / (name if name.endswith(".toml") else f"{name}.toml")
    if shipped.exists():
        return shipped
    raise FileNotFoundError(f"no config {name!r} (neither a file nor one of {shipped_configs()})")


def _cmd_memory(args: argparse.Namespace) -> int:
    register_layers()  # keras and its backend (quietly for the command), after the cheap checks
    from keras_seq.pipelines.adding_problem import format_table, run_memory_experiment

    cells = tuple(c.strip() for c in args.cells.split(",") if c.strip())
    with contextlib.redirect_stdout(sys.stderr):
        results = run_memory_experiment(
            cells=cells,
            steps=args.steps,
            units=args.units,
            epochs=args.epochs,
            seed=args.seed,
            verbose=args.keras_verbose,
        )
    print(format_table(results, args.steps))
    return 0


def _cmd_data_stats(args: argparse.Namespace) -> int:
    from keras_seq.tasks import get_task

    options = {}
    if args.text_column:
        options["text_column"] = args.text_column
    if args.label_column:
        options["label_column"] = args.label_column
    if not args.source.startswith("tfds:") and not Path(args.source).exists():
        raise FileNotFoundError(f"no such data source: {args.source}")
    register_layers()  # keras and its backend (quietly for the command), after the cheap checks
    from keras_seq.pipelines.stats import corpus_stats, format_stats

    level = args.level or get_task(args.task).level
    lower = level == "word" if args.lower is None else args.lower
    stats = corpus_stats(
        args.source,
        args.task,
        level=level,
        max_len=args.max_len,
        vocab_size=args.vocab_size,
        min_count=args.min_count,
        batch_size=args.batch_size,
        buckets=args.buckets,
        lower=lower,
        **options,
    )
    print(json.dumps(stats) if args.json else format_stats(stats))
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from keras_seq.pipelines.config import load_config

    path = resolve_config(args.config)
    config = load_config(path, [*(args.set or []), *([f'train.strategy="{args.strategy}"'] if args.strategy else [])])
    if not config["data"]["source"]:
        hint = (
            " (the demo config trains on the corpus `keras-seq demo` generates: run `keras-seq demo`, or "
            "`keras-seq train demo --set data.source=demo-out/data --out RUN` after it)"
            if path.stem == "demo"
            else ""
        )
        raise ValueError(f"the config names no data.source: add --set data.source=PATH{hint}")
    from keras_seq.pipelines.config import dump_toml

    RunDirectory(args.out).check_can_train(dump_toml(config), args.overwrite)  # before TensorFlow: a quick answer
    register_layers()  # keras and its backend (quietly for the command), after the cheap checks
    from keras_seq.pipelines.train import train_run

    with contextlib.redirect_stdout(sys.stderr):  # Keras' progress: stderr; the metrics: stdout
        metrics = train_run(config, args.out, verbose=args.keras_verbose, overwrite=args.overwrite)
    print(json.dumps(metrics, indent=2))
    return 0


def _cmd_data_service(args: argparse.Namespace) -> int:
    if not 0 <= args.port < 65536:
        raise ValueError(f"--port must be 0..65535; received {args.port}")
    register_layers()  # TensorFlow (quietly for the command), after the cheap checks
    from keras_seq.pipelines.data_service import run_dispatcher, run_worker

    def ready(port: int) -> None:  # the port on stdout, for scripts that asked for port 0
        print(port, flush=True)

    from keras_seq._terminate import Terminated

    try:
        if args.role == "dispatcher":
            run_dispatcher(args.port, work_dir=args.work_dir, ready=ready)
        else:
            run_worker(args.dispatcher, args.port, host=args.host, ready=ready)
    except (Terminated, KeyboardInterrupt):
        return 0  # SIGTERM / Ctrl-C is how a server is stopped
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    RunDirectory(args.run_dir).check()
    register_layers()  # keras and its backend (quietly for the command), after the cheap checks
    from keras_seq.pipelines.evaluate import evaluate_run

    decode = {
        key: value
        for key, value in (("beam", args.beam), ("alpha", args.alpha), ("merge_stress", args.merge_stress))
        if value is not None
    }
    result = evaluate_run(args.run_dir, args.source, split=args.split, decode=decode)
    print(json.dumps(result) if args.json else "\n".join(f"{k:>18}: {v}" for k, v in result.items()))
    return 0


def _cmd_generate(args: argparse.Namespace) -> int:
    RunDirectory(args.run_dir).check()
    register_layers()  # keras and its backend (quietly for the command), after the cheap checks
    from keras_seq.pipelines.generate import generate_text, transduce
    from keras_seq.pipelines.tasks import pipeline_for

    if pipeline_for(RunDirectory(args.run_dir).config()["task"]).transduces:
        if args.temperature is not None:
            raise ValueError("--temperature samples language models; an encoder-decoder takes --beam K")
        answer = transduce(args.run_dir, args.prompt, beam=args.beam, plot=args.plot)
        print(" ".join(answer["output"]))
        print(
            f"score {answer['score']:.4f}" + (f"; alignment saved to {args.plot}" if args.plot else ""), file=sys.stderr
        )
        return 0
    if args.plot:
        raise ValueError("--plot draws an encoder-decoder's attention; this run is a language model")
    print(
        generate_text(
            args.run_dir, args.prompt, length=args.length, temperature=args.temperature, beam=args.beam, seed=args.seed
        )
    )
    return 0


def add_commands(sub) -> None:
    """Adds the pipelines' subcommands to the CLI's subparsers."""
    from keras_seq.tasks import task_names

    memory = sub.add_parser("memory", help="the adding-problem memory experiment (Elman vs GRU vs LSTM)")
    memory.add_argument("--cells", default="elman,gru,lstm", help="comma-separated cells (default: all three)")
    memory.add_argument("--steps", type=int, default=50, help="sequence length T (default 50)")
    memory.add_argument("--units", type=int, default=32)
    memory.add_argument("--epochs", type=int, default=4, help="passes over 20,000 generated sequences")
    memory.add_argument("--seed", type=int, default=0)
    memory.add_argument(
        "--keras-verbose",
        "--verbose",
        dest="keras_verbose",
        type=int,
        default=0,
        choices=[0, 1, 2],
        help="Keras' progress output (on stderr)",
    )
    memory.set_defaults(func=_cmd_memory)

    train = sub.add_parser("train", help="train a model from a config")
    train.add_argument("config", help=f"a TOML config file, or a shipped one: {', '.join(shipped_configs())}")
    train.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config key (repeatable)")
    train.add_argument(
        "--out", required=True, help="the run directory; rerun the same command to resume an unfinished run"
    )
    train.add_argument(
        "--overwrite",
        action="store_true",
        help="train a finished run directory again (its own files are removed first)",
    )
    train.add_argument(
        "--strategy",
        default=None,
        choices=["default", "mirrored", "multi_worker"],
        help="train.strategy: mirrored = this machine's GPUs; multi_worker = the cluster in TF_CONFIG "
        "(every worker runs this same command; the chief writes --out)",
    )
    train.add_argument(
        "--keras-verbose",
        "--verbose",
        dest="keras_verbose",
        type=int,
        default=1,
        choices=[0, 1, 2],
        help="Keras' progress output on stderr: 0 none, 1 a bar, 2 a line per epoch (default 1)",
    )
    train.set_defaults(func=_cmd_train)

    evaluate = sub.add_parser("evaluate", help="metrics of a trained run on a data source")
    evaluate.add_argument("run_dir")
    evaluate.add_argument("source", nargs="?", default=None, help="default: the run's own source")
    evaluate.add_argument("--split", default="test")
    evaluate.add_argument("--json", action="store_true")
    evaluate.add_argument("--beam", type=int, default=None, help="seq2seq: beam width (default: the run's [decode])")
    evaluate.add_argument(
        "--alpha", type=float, default=None, help="seq2seq: length normalisation, score = log p / length**alpha"
    )
    evaluate.add_argument(
        "--merge-stress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="seq2seq on ARPAbet: rank outputs by their stress-free phones, stress variants "
        "summed (default: the run's [decode])",
    )
    evaluate.set_defaults(func=_cmd_evaluate)

    generate = sub.add_parser(
        "generate",
        help="continue a prompt with a language model, or transduce a text with an encoder-decoder (seq2seq)",
    )
    generate.add_argument("run_dir")
    generate.add_argument(
        "--prompt",
        "--text",
        dest="prompt",
        required=True,
        help="the prompt (language models) or the source text (seq2seq, e.g. a word)",
    )
    generate.add_argument("--plot", default=None, help="seq2seq: save the attention alignment as this PNG")
    generate.add_argument("--length", type=int, default=200)
    how = generate.add_mutually_exclusive_group()
    how.add_argument("--temperature", type=float, default=None, help="sample at this temperature")
    how.add_argument("--beam", type=int, default=None, help="beam search with this width")
    generate.add_argument("--seed", type=int, default=0)
    generate.set_defaults(func=_cmd_generate)

    service = sub.add_parser(
        "data-service",
        help="a tf.data service dispatcher or worker, to make training "
        'batches on other processes or machines (train.data_service = "grpc://HOST:PORT")',
    )
    roles = service.add_subparsers(dest="role", required=True)
    dispatcher = roles.add_parser("dispatcher", help="the dispatcher: hands each epoch's shards to the workers")
    dispatcher.add_argument("--port", type=int, required=True, help="its port (0: any free one, printed)")
    dispatcher.add_argument(
        "--work-dir",
        default=None,
        help="keep the dispatcher's journal here, so a restarted dispatcher resumes its jobs",
    )
    dispatcher.set_defaults(func=_cmd_data_service)
    worker = roles.add_parser("worker", help="a worker: reads, tokenizes and batches the shards it is handed")
    worker.add_argument("--dispatcher", required=True, metavar="HOST:PORT")
    worker.add_argument("--port", type=int, required=True, help="its port (0: any free one, printed)")
    worker.add_argument(
        "--host",
        default="127.0.0.1",
        help="the address trainers reach this worker at "
        "(default 127.0.0.1; TensorFlow's server listens on every interface)",
    )
    worker.set_defaults(func=_cmd_data_service)

    data = sub.add_parser("data", help="data tools").add_subparsers(dest="data_command", required=True)
    stats = data.add_parser("stats", help="corpus statistics: sizes, lengths, <UNK> share, padding")
    stats.add_argument("source", help="a path (file, folder, .tar.gz) or tfds:NAME")
    stats.add_argument("--task", required=True, choices=task_names())
    stats.add_argument("--level", default=None, choices=["word", "char"], help="default: the task's (lm: char)")
    stats.add_argument("--max-len", type=int, default=None, help="truncate examples to this many tokens")
    stats.add_argument(
        "--lower",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="ASCII lower-casing (default: on for word level, off for char level)",
    )
    stats.add_argument("--vocab-size", type=int, default=20000)
    stats.add_argument("--min-count", type=int, default=1)
    stats.add_argument("--batch-size", type=int, default=64)
    stats.add_argument("--buckets", type=int, default=12)
    stats.add_argument("--text-column", default=None, help="CSV/TSV/JSONL text column (default 'text')")
    stats.add_argument("--label-column", default=None, help="CSV/TSV/JSONL label column (default 'label')")
    stats.add_argument("--json", action="store_true", help="print one JSON object")
    stats.set_defaults(func=_cmd_data_stats)
