"""The pipelines' subcommands: ``train``, ``evaluate``, ``generate``, ``data stats``, ``config``,
``memory``, ``data-service``.

Each calls one public function (`train_run`, `evaluate_run`, `generate_text`,
`corpus_stats`, `run_memory_experiment`, `run_dispatcher` / `run_worker`); nothing
heavy is imported until a command runs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
from pathlib import Path

from keras_seq import register_layers
from keras_seq._command_line import add_command, add_group, add_progress
from keras_seq.contracts import RunDirectory
from keras_seq.pipelines.config import resolve_config, shipped_configs


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
        pass  # SIGTERM / Ctrl-C is how a server is stopped
    # The server stopped (or its bounded wait ended): exit now. TensorFlow's teardown at interpreter
    # exit (its servers' threads, static destructors) is what could still take long on a busy CPU.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


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


def _cmd_config(args: argparse.Namespace) -> int:
    from keras_seq.pipelines.config import config_summary, config_template

    if args.config_command == "list":
        names = shipped_configs()
        if args.json:
            print(json.dumps({name: config_summary(name) for name in names}))
        else:
            width = max(map(len, names))
            print("\n".join(f"{name:<{width}}  {config_summary(name)}" for name in names))
    elif args.config_command == "show":
        print(resolve_config(args.name).read_text(encoding="utf-8"), end="")
    elif args.config_command == "init":
        print(config_template(args.name, args.data), end="")
    else:  # keys
        from dataclasses import asdict

        from keras_seq.pipelines.config_keys import KEYS

        keys = [k for k in KEYS.values() if args.task is None or k.applies_to(args.task)]
        if args.json:
            print(json.dumps({k.name: {**asdict(k), "type": k.type_name} for k in keys}))
        else:
            print("\n".join(f"{k.name}  ({k.type_name}; default {k.default!r})\n    {k.help}" for k in keys))
    return 0


def add_commands(sub) -> None:
    """Adds the pipelines' subcommands to the CLI's subparsers."""
    from keras_seq.tasks import task_names

    train = add_command(
        sub,
        "train",
        help="train a model from a config",
        description="Trains the model a config describes and writes a run directory: model.keras, the "
        "tokenizer files, config.toml, metrics.json, history.csv, curves.png. Rerunning the same command "
        "resumes an unfinished run exactly. The metrics go to stdout as JSON, progress to stderr.",
        examples=[
            "keras-seq train imdb_sentiment --out runs/imdb",
            "keras-seq train my.toml --set model.cell=gru --set train.epochs=3 --out runs/mine",
        ],
    )
    train.add_argument("config", help=f"a TOML config file, or a shipped one: {', '.join(shipped_configs())}")
    train.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config key (repeatable)")
    train.add_argument("--out", required=True, help="the run directory; rerun the same command to resume")
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
        "(every worker runs this same command; the chief writes --out); default: the config's",
    )
    add_progress(train, default=1)
    train.set_defaults(func=_cmd_train)

    evaluate = add_command(
        sub,
        "evaluate",
        help="metrics of a trained run on a data source",
        description="Scores a run on a split of its own data source or of another source of the same format: "
        "accuracy (classify), token accuracy and entity F1 (tag), loss and perplexity (lm), WER / PER style "
        "rates of beam-search outputs (seq2seq).",
        examples=["keras-seq evaluate runs/ewt --json", "keras-seq evaluate runs/g2p --split validation --beam 8"],
        json_output=True,
    )
    evaluate.add_argument("run_dir", help="a run directory written by keras-seq train")
    evaluate.add_argument("source", nargs="?", default=None, help="a data source (default: the run's own)")
    evaluate.add_argument("--split", default="test", choices=["train", "validation", "test"], help="the split to score")
    evaluate.add_argument("--beam", type=int, default=None, help="seq2seq: beam width (default: the run's [decode])")
    evaluate.add_argument(
        "--alpha", type=float, default=None, help="seq2seq: length normalisation (default: the run's [decode])"
    )
    evaluate.add_argument(
        "--merge-stress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="seq2seq on ARPAbet: rank outputs by their stress-free phones (default: the run's [decode])",
    )
    evaluate.set_defaults(func=_cmd_evaluate)

    generate = add_command(
        sub,
        "generate",
        help="continue a prompt (language models) or transduce a text (seq2seq)",
        description="A language model continues the prompt (greedy, or sampled with --temperature); an "
        "encoder-decoder transduces the text by beam search (G2P: a word to its phones).",
        examples=[
            'keras-seq generate runs/shakespeare --prompt "ROMEO:" --temperature 0.8',
            "keras-seq generate runs/g2p --text phonetics --beam 4 --plot align.png",
        ],
    )
    generate.add_argument("run_dir", help="a run directory written by keras-seq train")
    generate.add_argument(
        "--prompt",
        "--text",
        dest="prompt",
        required=True,
        help="the prompt (language models) or the source text (seq2seq, e.g. a word)",
    )
    generate.add_argument("--plot", default=None, help="seq2seq: save the attention alignment as this PNG")
    generate.add_argument("--length", type=int, default=200, help="language models: tokens to generate")
    how = generate.add_mutually_exclusive_group()
    how.add_argument("--temperature", type=float, default=None, help="sample at this temperature (default: greedy)")
    how.add_argument("--beam", type=int, default=None, help="beam search with this width (default: the run's)")
    generate.add_argument("--seed", type=int, default=0, help="the sampling seed")
    generate.set_defaults(func=_cmd_generate)

    data = add_group(
        sub, "data", help="data tools", description="Look at a data source before training.", dest="data_command"
    )
    stats = add_command(
        data,
        "stats",
        help="corpus statistics: sizes, lengths, <UNK> share, padding",
        description="Reads a source as a task would: examples per split and the split rule, token lengths, "
        "the vocabulary and <UNK> share, and the padding fixed-length, bucketed and sorted batches leave.",
        examples=[
            "keras-seq data stats reviews.csv --task classify",
            "keras-seq data stats tfds:conll2003 --task tag --json",
        ],
        json_output=True,
    )
    stats.add_argument("source", help="a path (file, folder, .tar.gz) or tfds:NAME")
    stats.add_argument("--task", required=True, choices=task_names(), help="what the examples are")
    stats.add_argument("--level", default=None, choices=["word", "char"], help="tokens (default: the task's; lm: char)")
    stats.add_argument(
        "--max-len", type=int, default=None, help="truncate examples to this many tokens (default: no limit)"
    )
    stats.add_argument(
        "--lower",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="ASCII lower-casing (default: on for word level, off for char level)",
    )
    stats.add_argument("--vocab-size", type=int, default=20000, help="most tokens in the vocabulary")
    stats.add_argument("--min-count", type=int, default=1, help="occurrences a token needs to enter the vocabulary")
    stats.add_argument("--batch-size", type=int, default=64, help="rows per batch for the padding figures")
    stats.add_argument("--buckets", type=int, default=12, help="length buckets for the bucketed figure")
    stats.add_argument("--text-column", default=None, help="CSV/TSV/JSONL text column (default 'text')")
    stats.add_argument("--label-column", default=None, help="CSV/TSV/JSONL label column (default 'label')")
    stats.set_defaults(func=_cmd_data_stats)

    config = add_group(
        sub,
        "config",
        help="the shipped configs, and a commented config to start from",
        description="Configs are TOML files; every key is defined once (keras_seq.pipelines.config_keys).",
        dest="config_command",
    )
    listing = add_command(
        config,
        "list",
        help="the shipped configs",
        description="The configs shipped with the package, each with what it trains.",
        examples=["keras-seq config list"],
        json_output=True,
    )
    listing.set_defaults(func=_cmd_config)
    show = add_command(
        config,
        "show",
        help="print a shipped config",
        description="Prints a shipped config file as it is.",
        examples=["keras-seq config show ewt_upos"],
    )
    show.add_argument("name", help=f"a shipped config: {', '.join(shipped_configs())}")
    show.set_defaults(func=_cmd_config)
    init = add_command(
        config,
        "init",
        help="a commented config to edit",
        description="Prints a config with every key its task reads, each with its meaning, type and default, "
        "set to the named config's values: redirect it to a file and edit it.",
        examples=["keras-seq config init imdb_sentiment --data reviews.csv > my.toml"],
    )
    init.add_argument("name", help="the config to start from: a shipped one or a file")
    init.add_argument("--data", default=None, help="the data.source to put in (default: the config's)")
    init.set_defaults(func=_cmd_config)
    keys = add_command(
        config,
        "keys",
        help="every config key",
        description="Every config key: type, default, meaning.",
        examples=["keras-seq config keys --task tag"],
        json_output=True,
    )
    keys.add_argument("--task", default=None, choices=task_names(), help="only the keys this task reads (default: all)")
    keys.set_defaults(func=_cmd_config)

    memory = add_command(
        sub,
        "memory",
        help="the adding-problem memory experiment (Elman vs GRU vs LSTM)",
        description="Trains each cell on the adding problem (sum the two marked numbers of a long sequence) "
        "and prints a table: which cells remember across T steps.",
        examples=["keras-seq memory --steps 100 --cells gru,lstm"],
    )
    memory.add_argument("--cells", default="elman,gru,lstm", help="comma-separated cells")
    memory.add_argument("--steps", type=int, default=50, help="sequence length T")
    memory.add_argument("--units", type=int, default=32, help="units per cell")
    memory.add_argument("--epochs", type=int, default=4, help="passes over 20,000 generated sequences")
    memory.add_argument("--seed", type=int, default=0, help="the seed of data and weights")
    add_progress(memory, default=0)
    memory.set_defaults(func=_cmd_memory)

    service = add_group(
        sub,
        "data-service",
        help="a tf.data service dispatcher or worker (train.data_service)",
        description="Runs a tf.data service dispatcher or worker, so training batches are made on other "
        'processes or machines (train.data_service = "grpc://HOST:PORT"). Stop it with SIGTERM or Ctrl-C.',
        dest="role",
    )
    dispatcher = add_command(
        service,
        "dispatcher",
        help="the dispatcher: hands each epoch's shards to the workers",
        description="The dispatcher of a tf.data service; prints its port on stdout when ready.",
        examples=["keras-seq data-service dispatcher --port 5050 --work-dir runs/dispatcher"],
    )
    dispatcher.add_argument("--port", type=int, required=True, help="its port (0: any free one, printed)")
    dispatcher.add_argument(
        "--work-dir", default=None, help="keep the dispatcher's journal here, so a restarted dispatcher resumes"
    )
    dispatcher.set_defaults(func=_cmd_data_service)
    worker = add_command(
        service,
        "worker",
        help="a worker: reads, tokenizes and batches the shards it is handed",
        description="A tf.data service worker; prints its port on stdout when ready.",
        examples=["keras-seq data-service worker --dispatcher 127.0.0.1:5050 --port 0"],
    )
    worker.add_argument("--dispatcher", required=True, metavar="HOST:PORT", help="the dispatcher's address")
    worker.add_argument("--port", type=int, required=True, help="its port (0: any free one, printed)")
    worker.add_argument(
        "--host",
        default="127.0.0.1",
        help="the address trainers reach this worker at (TensorFlow's server listens on every interface)",
    )
    worker.set_defaults(func=_cmd_data_service)
