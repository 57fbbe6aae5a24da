"""A seq2seq run scored twice on the same split, paired: with the weights it keeps (``model.keras``)
and with other weights of the same model, a backup file ``epoch-NNN.weights.h5`` copied while the run
trained (the run removes its backup when it finishes). For example, a run trained with
``train.ema_momentum`` keeps the moving average, against the training's own weights of the same
epoch (``--names average,own``, the result in benchmarks/README.md), or a run's kept epoch against
its last one (``--names kept,last``).

    python -m benchmarks.bench_paired_weights RUN_DIR OTHER_WEIGHTS [--names kept,other]
        [--split test] [--out FILE]

Prints a Markdown table: sequence and token error rates (WER / PER for G2P), with and without stress
where the references carry it, and McNemar's exact test on the sources one model gets right and the
other wrong (the two-sided binomial p-value of those discordant counts). Writes FILE
(default benchmarks/results/bench_paired_weights-<run name>.json).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def mcnemar(right_a: dict, right_b: dict) -> dict:
    """Discordant counts and McNemar's exact two-sided p-value over the same items."""
    from scipy.stats import binomtest

    if right_a.keys() != right_b.keys():
        raise ValueError("the two models were scored on different items")
    only_a = sum(right_a[k] and not right_b[k] for k in right_a)
    only_b = sum(right_b[k] and not right_a[k] for k in right_a)
    p_value = binomtest(only_a, only_a + only_b, 0.5).pvalue if only_a + only_b else 1.0
    return {"only_first_right": only_a, "only_second_right": only_b, "p_value": float(p_value)}


def scores(outputs: dict, references: dict, plain: bool) -> tuple[dict, dict]:
    """The error rates, and each source's right / wrong (stress removed when `plain`)."""
    from keras_seq.contracts.vocab import without_stress
    from keras_seq.pipelines.tasks.seq2seq import error_rates

    if plain:
        outputs = {s: without_stress(o) for s, o in outputs.items()}
        references = {s: [without_stress(r) for r in refs] for s, refs in references.items()}
    right = {s: outputs[s] in refs for s, refs in references.items()}
    return error_rates(outputs, references), right


def compare(run_dir: Path, other_weights: Path, split: str, names: tuple[str, str] = ("kept", "other")) -> dict:
    from keras_seq.contracts.vocab import has_stress
    from keras_seq.pipelines.evaluate import evaluation_context, load_model
    from keras_seq.pipelines.tasks import pipeline_for

    kept = evaluation_context(run_dir, split=split)
    part = pipeline_for(kept.config["task"])
    if not part.transduces:
        raise ValueError(f"{run_dir}: a {kept.config['task']} run; this comparison scores seq2seq runs")
    other_model = load_model(Path(run_dir) / "model.keras")
    other_model.load_weights(str(other_weights))  # the file's optimizer part is not read
    other = evaluation_context(run_dir, split=split, corpus=kept.corpus, model=other_model)
    decoded = {names[0]: part.transduce_split(kept), names[1]: part.transduce_split(other)}
    references = decoded[names[0]][1]
    result: dict = {"run": str(run_dir), "other_weights": str(other_weights), "split": split, "names": list(names)}
    views = [("with_stress", False)]
    if any(has_stress(r) for refs in references.values() for r in refs):
        views.append(("without_stress", True))
    for view, plain in views:
        rates, right = {}, {}
        for name, (outputs, refs) in decoded.items():
            rates[name], right[name] = scores(outputs, refs, plain)
        result[view] = {**rates, "mcnemar": mcnemar(right[names[0]], right[names[1]])}
    return result


def table(result: dict) -> str:
    rows = ["| weights | view | WER (sequence error) | PER (token error) |", "|---|---|---|---|"]
    for view in ("with_stress", "without_stress"):
        if view not in result:
            continue
        for name in result["names"]:
            r = result[view][name]
            rows.append(
                f"| {name} | {view.replace('_', ' ')} | {100 * r['sequence_error_rate']:.2f} % "
                f"| {100 * r['token_error_rate']:.2f} % |"
            )
        test = result[view]["mcnemar"]
        first, second = result["names"]
        rows.append(
            f"| McNemar | {view.replace('_', ' ')} | only {first} right: {test['only_first_right']}, "
            f"only {second}: {test['only_second_right']} | p = {test['p_value']:.3g} |"
        )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("other_weights", type=Path, help="a backup's epoch-NNN.weights.h5 of the same model")
    parser.add_argument("--names", default="kept,other", help="the two weights' names, the run's first")
    parser.add_argument("--split", default="test", choices=["validation", "test"])
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    names = args.names.split(",")
    if len(names) != 2 or not all(names) or names[0] == names[1]:
        parser.error(f"--names: two different names with a comma between; received {args.names!r}")
    result = compare(args.run_dir, args.other_weights, args.split, (names[0], names[1]))
    print(table(result))
    out = args.out or Path("benchmarks/results") / f"bench_paired_weights-{args.run_dir.name}.json"
    out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
