"""Loads a SavedModel the way deployments do and records its answers.

Run as a script in a fresh process (``python fresh_check.py SAVEDMODEL_DIR
INPUTS OUT.npz``; INPUTS is TEXTS.json, fed to every text signature, or
FEEDS.npz, keyed SIGNATURE/INPUT). It imports TensorFlow and NumPy only -- keras and this
project's packages are made unimportable -- so it proves the export stands on
its own:

1. ``tf.saved_model.load`` and a call of every signature fed;
2. the TF1 graph loader, ``tf.compat.v1.saved_model.loader.load`` in a
   session (the closest Python analogue of TF Serving's C++ loader), running
   the same signatures by their tensor names;
3. the warmup records in ``assets.extra``, replayed through that session as
   TF Serving does at load time;
4. with FEEDS.npz: ``saved_model_cli show --all`` and ``run`` of ``serving_default`` -- the
   command's own functions, called as its command line calls them, here rather than in two more
   processes that would import TensorFlow again.

Writes the answers to OUT.npz and a summary (signature tensor names, warmup
count, imported modules) to OUT.json.
"""

import json
import sys

# Make keras and this project unimportable: `import tensorflow` would otherwise
# pull keras in (tf.keras), and the check must show the model needs neither.
BLOCKED = ("keras", "tf_keras", "keras_seq")
for _name in BLOCKED:
    sys.modules[_name] = None

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402


def _texts(path):
    with open(path, encoding="utf-8") as f:
        items = json.load(f)
    # Items are {"text": str} or {"hex": bytes as hex} (invalid UTF-8 on purpose).
    return np.array([bytes.fromhex(i["hex"]) if "hex" in i else i["text"].encode("utf-8") for i in items], dtype=object)


def _feeds(path, signature_inputs):
    """{signature: {input: array}}: from INPUTS.npz (keys SIGNATURE/INPUT), or from
    TEXTS.json for every signature whose only input is ``text``."""
    if path.endswith(".npz"):
        feeds = {}
        for key, value in np.load(path, allow_pickle=True).items():
            signature, name = key.split("/", 1)
            feeds.setdefault(signature, {})[name] = value
        return feeds
    texts = _texts(path)
    return {name: {"text": texts} for name, inputs in signature_inputs.items() if set(inputs) == {"text"}}


def main(directory, inputs_path, out_path, chunk=None):
    answers, summary = {}, {"signatures": {}}
    loaded = tf.saved_model.load(directory)
    if chunk:  # many texts: answer them `chunk` at a time, outputs keyed by chunk (key#i)
        texts, size = _texts(inputs_path), int(chunk)
        for name, fn in loaded.signatures.items():
            if set(fn.structured_input_signature[1]) == {"text"}:
                for i in range(0, len(texts), size):
                    for key, value in fn(text=tf.constant(texts[i : i + size])).items():
                        answers[f"tf2/{name}/{key}#{i // size}"] = value.numpy()
        np.savez(out_path, **answers)
        return
    feeds = _feeds(inputs_path, {n: fn.structured_input_signature[1] for n, fn in loaded.signatures.items()})
    for name, feed in feeds.items():
        for key, value in loaded.signatures[name](**{k: tf.constant(v) for k, v in feed.items()}).items():
            answers[f"tf2/{name}/{key}"] = value.numpy()
    with tf.Graph().as_default(), tf.compat.v1.Session() as session:
        meta = tf.compat.v1.saved_model.loader.load(session, ["serve"], directory)
        for name, sig in meta.signature_def.items():
            summary["signatures"][name] = {
                "inputs": {k: v.name for k, v in sig.inputs.items()},
                "outputs": {k: v.name for k, v in sig.outputs.items()},
            }
            if name not in feeds:
                continue
            fetches = {k: v.name for k, v in sig.outputs.items()}
            feed = {sig.inputs[k].name: v for k, v in feeds[name].items()}
            for key, value in session.run(fetches, feed).items():
                answers[f"tf1/{name}/{key}"] = value
        summary["warmup_requests"] = _replay_warmup(session, meta, directory)
    if inputs_path.endswith(".npz") and "serving_default" in feeds:
        summary["saved_model_cli_show"] = _saved_model_cli(directory, feeds["serving_default"], out_path, answers)
    np.savez(out_path, **answers)
    summary["imported"] = sorted(m for m in BLOCKED if sys.modules.get(m) is not None)
    with open(out_path[: -len(".npz")] + ".json", "w", encoding="utf-8") as f:
        json.dump(summary, f)


def _saved_model_cli(directory, feed, out_path, answers):
    """saved_model_cli's ``show --all`` (its printout, returned) and ``run`` (answers "cli/serving_default/KEY"),
    fed from .npy files as its --inputs option is."""
    import contextlib
    import io
    import os

    from tensorflow.python.tools import saved_model_cli

    folder = out_path[: -len(".npz")] + "-cli"
    os.makedirs(folder, exist_ok=True)
    shown = io.StringIO()
    with contextlib.redirect_stdout(shown):
        saved_model_cli._show_all(directory)
    arguments = []
    for name, value in feed.items():
        np.save(os.path.join(folder, f"input-{name}.npy"), value, allow_pickle=True)
        arguments.append(f"{name}={os.path.join(folder, f'input-{name}.npy')}")
    inputs = saved_model_cli.load_inputs_from_input_arg_string(";".join(arguments), "", "")
    with contextlib.redirect_stdout(io.StringIO()):
        saved_model_cli.run_saved_model_with_feed_dict(directory, "serve", "serving_default", inputs, folder, True)
    for name in os.listdir(folder):
        if name.endswith(".npy") and not name.startswith("input-"):
            answers[f"cli/serving_default/{name[: -len('.npy')]}"] = np.load(
                os.path.join(folder, name), allow_pickle=True
            )
    return shown.getvalue()


def _replay_warmup(session, meta, directory):
    import os

    path = os.path.join(directory, "assets.extra", "tf_serving_warmup_requests")
    if not os.path.exists(path):
        return 0
    from tensorflow_serving.apis import prediction_log_pb2

    count = 0
    for record in tf.compat.v1.io.tf_record_iterator(path):
        log = prediction_log_pb2.PredictionLog.FromString(record)
        request = log.predict_log.request
        sig = meta.signature_def[request.model_spec.signature_name or "serving_default"]
        feed = {sig.inputs[k].name: tf.make_ndarray(v) for k, v in request.inputs.items()}
        session.run({k: v.name for k, v in sig.outputs.items()}, feed)
        count += 1
    return count


if __name__ == "__main__":
    main(*sys.argv[1:5])
