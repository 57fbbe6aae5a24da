"""Taggers with and without contextual characters (character LMs pretrained on unlabeled text, here
IMDB's training reviews), on the same time budget, where the in-domain EWT test showed no gain
(benchmarks/results/train-ewt_upos_char_lm.json):

UD English EWT with one genre (the ``sent_id`` prefix: answers, email, newsgroup, reviews, weblog)
left out of training and validation; that genre's dev and test sentences are the test set (the
cross-domain check), the other genres' test sentences the in-domain one. ``ewt_upos`` against
``ewt_upos_char_lm``.

    python -m benchmarks.bench_char_lm [--genre reviews] [--minutes 15]
        [--char-lms runs/imdb_char_lm_forward,runs/imdb_char_lm_backward] [--out runs/bench_char_lm]

The character LM runs come first (``keras-seq train imdb_char_lm --out runs/imdb_char_lm_forward``
and the same with ``--set model.direction=backward``). Prints a Markdown table (each metric and its
difference from the reference config) and writes benchmarks/results/bench_char_lm-genre-<genre>.json.
The split's files go under --out (derived from ../shared/data, never into the repository).
"""

from __future__ import annotations

import argparse
import json
import math
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

GENRES = ("answers", "email", "newsgroup", "reviews", "weblog")
SPLIT_FILES = {"train": "en_ewt-ud-train.conllu", "dev": "en_ewt-ud-dev.conllu", "test": "en_ewt-ud-test.conllu"}


def sentences(path: Path) -> list[tuple[str, str]]:
    """(genre, block) for each sentence of a CoNLL-U file; the genre is its sent_id's prefix."""
    found = []
    for number, block in enumerate(path.read_text(encoding="utf-8").split("\n\n")):
        if not block.strip():
            continue
        ids = [line for line in block.splitlines() if line.startswith("# sent_id = ")]
        if not ids:
            raise ValueError(f"{path}: sentence {number + 1} has no '# sent_id = ' line to read its genre from")
        found.append((ids[0].removeprefix("# sent_id = ").split("-", 1)[0], block.strip("\n")))
    return found


def write_genre_split(source: Path, genre: str, out: Path) -> dict:
    """Two source folders under `out`: `held_out` (train and dev without `genre`; test: the genre's
    dev and test sentences) and `in_domain` (the same train and dev; test: the other genres' test
    sentences). Returns the sentence counts."""
    read = {split: sentences(source / name) for split, name in SPLIT_FILES.items()}
    if genre not in {g for rows in read.values() for g, _ in rows}:
        raise ValueError(f"--genre {genre!r}: no sentence of {source} has that sent_id prefix")
    kept = {split: [b for g, b in read[split] if g != genre] for split in ("train", "dev")}
    tests = {
        "held_out": [b for split in ("dev", "test") for g, b in read[split] if g == genre],
        "in_domain": [b for g, b in read["test"] if g != genre],
    }
    for folder, test in tests.items():
        (out / folder).mkdir(parents=True, exist_ok=True)
        for split, blocks in [*kept.items(), ("test", test)]:
            (out / folder / SPLIT_FILES[split]).write_text("\n\n".join(blocks) + "\n\n", encoding="utf-8")
    return {"train": len(kept["train"]), "validation": len(kept["dev"]), **{k: len(v) for k, v in tests.items()}}


def compare(configs: dict, budget: list[str], tests: dict, out: Path) -> dict:
    """Trains each of `configs` ({name: (shipped config, --set overrides)}) on `budget`, one after the
    other, and evaluates it on each of `tests` ({label: source folder})."""
    from keras_seq.pipelines.config import load_config, resolve_config
    from keras_seq.pipelines.evaluate import evaluate_run
    from keras_seq.pipelines.train import train_run

    rows = {}
    for name, (config, sets) in configs.items():
        run = out / name
        metrics = train_run(load_config(resolve_config(config), [*budget, *sets]), run, verbose=2, overwrite=True)
        rows[name] = {
            "config": config,
            "overrides": [*budget, *sets],
            "train_seconds": metrics["train_seconds"],
            "epochs_run": metrics["epochs_run"],
            "parameters": metrics["parameters"],
            "validation": metrics["validation"],
            **{label: evaluate_run(run, source, "test") for label, source in tests.items()},
        }
    return rows


def table(rows: dict, columns: dict[str, str]) -> str:
    """A row per config: its token accuracy on each test ({heading: test label}) in percent, with its
    binomial standard error and its difference from the first config (the reference)."""
    reference = next(iter(rows.values()))
    lines = [
        "| config | " + " | ".join(f"{heading} | Δ" for heading in columns) + " | epochs | train s |",
        "|---|" + "---|---|" * len(columns) + "---|---|",
    ]
    for name, row in rows.items():
        cells = []
        for label in columns.values():
            value, tokens = row[label]["token_accuracy"], row[label]["tokens"]
            cells += [
                f"{100 * value:.2f} ± {100 * math.sqrt(value * (1 - value) / tokens):.2f}",
                f"{100 * (value - reference[label]['token_accuracy']):+.2f}",
            ]
        lines.append(f"| {name} | {' | '.join(cells)} | {row['epochs_run']} | {row['train_seconds']:.0f} |")
    return "\n".join(lines)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--genre", default="reviews", choices=GENRES)
    p.add_argument("--minutes", type=float, default=15.0, help="each tagger's training budget")
    p.add_argument("--out", default="runs/bench_char_lm")
    p.add_argument("--char-lms", default="runs/imdb_char_lm_forward,runs/imdb_char_lm_backward")
    p.add_argument("--data", default=os.environ.get("KERAS_SEQ_DATA", "../shared/data"))
    args = p.parse_args(argv)

    from keras_seq.pipelines.precision import machine_summary

    char_lms = args.char_lms.split(",")
    for run in char_lms:
        if not (Path(run) / "metrics.json").exists():
            raise SystemExit(f"--char-lms: {run} is not a finished run; train imdb_char_lm first (see --help)")
    budget = [f"train.max_minutes={args.minutes}", 'train.lr_schedule="budget"', "train.lr_decay=1"]
    init_from = f"model.init_from={json.dumps(char_lms)}"
    out = Path(args.out) / f"genre-{args.genre}"
    sentences_kept = write_genre_split(Path(args.data) / "ud_english_ewt", args.genre, out)
    budget.append(f'data.source="{out / "held_out"}"')
    configs = {"ewt_upos": ("ewt_upos", []), "ewt_upos_char_lm": ("ewt_upos_char_lm", [init_from])}
    tests = {"held_out": str(out / "held_out"), "in_domain": str(out / "in_domain")}
    columns = {f"{args.genre} (held out)": "held_out", "other genres' test": "in_domain"}
    rows = compare(configs, budget, tests, out)
    shown = table(rows, columns)
    print(shown)
    results = Path(__file__).resolve().parent / "results"
    results.mkdir(exist_ok=True)
    command = f"python -m benchmarks.bench_char_lm --genre {args.genre} --minutes {args.minutes}"
    (results / f"bench_char_lm-genre-{args.genre}.json").write_text(
        json.dumps(
            {
                "machine": machine_summary(),
                "command": command,
                "char_lms": char_lms,
                "sentences": sentences_kept,
                "table": shown,
                "runs": rows,
            },
            indent=2,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
