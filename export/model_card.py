"""``MODEL_CARD.md`` beside every export: what the model is, how it was trained and scored, what goes
in and out, and where it stops, for a person; with YAML front matter (the convention model hubs
read) for a machine. Written from ``export.json``, the run's ``metrics.json`` and its config."""

from __future__ import annotations

import json
from pathlib import Path

from keras_seq.contracts.export_dir import MODEL_CARD_FILE
from keras_seq.contracts.files import write_text

#: the model hubs' pipeline tag of each task's answers
_PIPELINE_TAGS = {
    "classify": "text-classification",
    "tag": "token-classification",
    "lm": "text-generation",
    "seq2seq": "text2text-generation",
}


def held_out_metrics(metrics: dict) -> tuple[str, dict]:
    """(split, its numeric metrics) that the run reports as its result: test, else validation.
    Nested tables (seq2seq's ``without_stress``) flatten to ``name/key``."""
    split = "test" if isinstance(metrics.get("test"), dict) else "validation"
    flat: dict = {}
    for key, value in (metrics.get(split) or {}).items():
        if isinstance(value, dict):
            flat.update({f"{key}/{k}": v for k, v in value.items() if _is_number(v)})
        elif _is_number(value):
            flat[key] = value
    return split, flat


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _front_matter(summary: dict, split: str, scores: dict, source: str) -> list[str]:
    lines = [
        "---",
        "library_name: keras-seq",
        f"pipeline_tag: {_PIPELINE_TAGS.get(summary['task'], summary['task'])}",
        "tags: [keras, rnn, onnx, tensorflow-serving]",
    ]
    if scores:
        lines += [
            "model-index:",
            f"- name: {json.dumps(summary['name'])}",
            "  results:",
            f"  - task: {{type: {_PIPELINE_TAGS.get(summary['task'], summary['task'])}}}",
            f"    dataset: {{name: {json.dumps(source)}, split: {split}}}",
            "    metrics:",
        ]
        lines += [f"    - {{type: {json.dumps(k)}, value: {json.dumps(v)}}}" for k, v in scores.items()]
    return [*lines, "---", ""]


def model_card(summary: dict, metrics: dict | None, config: dict | None) -> str:
    """The card's text. `metrics` and `config` are the run's (None for a model trained in your own code)."""
    metrics, config = metrics or {}, config or {}
    split, scores = held_out_metrics(metrics)
    data = config.get("data", {})
    source = data.get("source") or "not recorded"
    lines = _front_matter(summary, split, scores, source)
    lines += [f"# {summary['name']} (version {summary['version']})", ""]
    lines += [
        f"A keras-seq **{summary['task']}** model ({summary['kind']}), exported as a TF Serving SavedModel "
        f"(`{summary['savedmodel']}`) and an ONNX graph (`{summary['onnx']}`, opset {summary['opset']}).",
        "",
        "## Training",
        "",
    ]
    if metrics:
        rule = metrics.get("data_split", {})
        lines += [
            f"- Data: `{source}` ({rule.get('rule', 'split rule not recorded')})",
            f"- Model: {_model_line(config)}",
            f"- Trained {metrics.get('epochs_run', '?')} epochs in {metrics.get('train_seconds', '?')} s, "
            f"kept epoch {metrics.get('kept_epoch', '?')} by `{metrics.get('monitor', 'val_loss')}`; "
            f"{metrics.get('parameters', '?'):,} parameters"
            + (f"; precision {metrics['mixed_precision']}" if metrics.get("mixed_precision") else ""),
            f"- Machine: {metrics.get('machine', 'not recorded')}",
        ]
    else:
        lines.append("- Trained in the user's own code: keras-seq did not record its data, time or scores.")
    lines += ["", f"## Results ({split} split)", ""]
    if scores:
        lines += ["| metric | value |", "|---|---|"] + [f"| {k} | {v:.6g} |" for k, v in scores.items()]
    else:
        lines.append("Not measured by keras-seq.")
    lines += ["", "## Inputs and outputs", ""]
    for name, inputs in summary["signatures"].items():
        lines.append(f"- SavedModel signature `{name}`: inputs {', '.join(f'`{i}`' for i in inputs)}")
    lines += [
        "- ONNX: `ids` int64 (batch, time), right-padded with 0; the tokenizer files beside the graph turn text "
        "into ids (`keras_seq.serving.OnnxPredictor` does it, and answers as the SavedModel does)",
        f"- Labels: {', '.join(summary['labels'][:20]) + (' ...' if len(summary['labels']) > 20 else '')}"
        if summary.get("labels")
        else "- Labels: none (the answers are scores or generated tokens)",
        "",
        "## Tokenizer",
        "",
        f"- Level {data.get('level', 'see tokenizer.json')}, ASCII lower-cased: "
        f"{data.get('lower', 'see tokenizer.json')}, at most {summary['max_len']} tokens per text "
        "(longer texts are cut)",
        "",
        "## Limitations",
        "",
        f"- Texts longer than {summary['max_len']} tokens are truncated before the model sees them.",
        "- The model knows only the vocabulary and the kind of text it was trained on; other domains, languages "
        "and spellings fall back to `<UNK>` and score lower.",
        "- Scores are from one run and one split; the seed spread is not included.",
        "",
    ]
    return "\n".join(lines)


def _model_line(config: dict) -> str:
    m = config.get("model", {})
    parts = [f"{m.get('cell', '?')}"]
    if m.get("bidirectional"):
        parts.append("bidirectional")
    parts.append(f"{m.get('depth', 1)} layer(s) of {m.get('units', '?')} units")
    if m.get("crf"):
        parts.append("CRF output")
    return ", ".join(parts)


def write_model_card(out: Path, summary: dict, metrics: dict | None, config: dict | None) -> Path:
    path = Path(out) / MODEL_CARD_FILE
    write_text(path, model_card(summary, metrics, config))
    return path
