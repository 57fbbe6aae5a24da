"""The text-in graph checked in a fresh process without TensorFlow (as a binding runs it; where
TensorFlow is loaded first, its RE2 takes the place of onnxruntime-extensions'):

    python text_graph_check.py ONNX_DIR TEXTS.json OUT.json

TEXTS.json: a list of strings. Writes {"texts", "mismatched", "first"}: texts whose ids, label,
tokens or tags differ between the text-in graph and `OnnxPredictor` (the tokenizer's twin).
"""

import json
import sys

import onnxruntime_extensions  # noqa: F401 - first: its RE2 before anything else's

from keras_seq.serving.predictor import OnnxPredictor
from keras_seq.serving.text_graph import text_graph_answers, text_graph_session


def main(onnx_dir, texts_path, out_path, chunk=16):
    with open(texts_path, encoding="utf-8") as f:
        texts = json.load(f)
    predictor = OnnxPredictor(onnx_dir)
    session = text_graph_session(onnx_dir)
    mismatched, first = 0, None
    for start in range(0, len(texts), chunk):
        batch = texts[start : start + chunk]
        for text, got, want in zip(batch, text_graph_answers(session, batch), predictor.predict(batch)):
            ids = predictor.tokenizer.encode(text)
            same = got["ids"][: len(ids)].tolist() == ids and not got["ids"][len(ids) :].any()
            same = same and all(got[k] == want[k] for k in ("label", "tokens", "tags") if k in got)
            if not same:
                mismatched += 1
                first = first or text[:200]
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump({"texts": len(texts), "mismatched": mismatched, "first": first}, f)


if __name__ == "__main__":
    main(*sys.argv[1:4])
