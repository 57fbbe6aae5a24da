"""Text classification: a text in, one label out (``labels.txt``)."""
from __future__ import annotations

import logging

from keras_seq.contracts import answers
from keras_seq.contracts.run_dir import LABELS_FILE
from keras_seq.tasks.base import Task


class ClassifyTask(Task):
    name = "classify"
    signature_key = "label_names"
    label_file = LABELS_FILE
    monitors = ("val_loss", "val_accuracy")

    def read_file(self, corpus, path, split):
        from keras_seq.pipelines.readers import class_folders, tabular

        if class_folders.is_archive(path) or (path.is_dir() and not corpus.has_tables(path)):
            labels = tuple(corpus.options.get("labels", class_folders.DEFAULT_LABELS))
            return class_folders.iter_class_folder(path, split, labels)
        return tabular.iter_table(corpus.split_file(path, split), corpus.options.get("text_column", "text"),
                                  corpus.options.get("label_column", "label"))

    def label_items(self, example):
        return [example[1]]

    def example_signature(self):
        import tensorflow as tf

        return tf.TensorSpec([], tf.string), tf.TensorSpec([], tf.string)

    def token_batches(self, raw, spec):
        from keras_seq.pipelines.datasets import ENCODE_BATCH
        from keras_seq.pipelines.tokenize import tokenize

        return raw.map(lambda text, label: text).batch(ENCODE_BATCH).map(lambda t: tokenize(t, spec))

    def encode(self, raw, encoder, labels):
        from keras_seq.pipelines.batching import AUTOTUNE
        from keras_seq.pipelines.datasets import ENCODE_BATCH, unbatch_ragged

        ds = raw.batch(ENCODE_BATCH).map(lambda t, l: (encoder.encode(t), labels(l)), num_parallel_calls=AUTOTUNE)
        return unbatch_ragged(ds)

    def label_vocabulary(self, counts):
        from keras_seq.contracts import Vocabulary

        if len(counts) < 2:  # no error: a one-class file may be a deliberate test, but say it loudly
            logging.getLogger(__name__).warning(
                "the training split has one label only (%s): the classifier cannot learn to tell classes "
                "apart (data.limit takes the first N examples, and an archive of class folders reads one "
                "class after the other)", ", ".join(map(str, counts)) or "none")
        return Vocabulary(sorted(counts), level="label")  # classes reserve no ids

    def build_model(self, config, vocab_size, num_labels, embedding_matrix=None, char_vocab_size=None,
                    training=True):
        import keras_seq

        m = config["model"]
        return keras_seq.build_classifier(
            vocab_size, num_labels, bidirectional=m["bidirectional"], pooling=m["pooling"],
            embedding_matrix=embedding_matrix, cell=m["cell"], embed_dim=m["embed_dim"], units=m["units"],
            depth=m["depth"], dropout=m["dropout"], recurrent_dropout=m["recurrent_dropout"])

    def metrics(self):
        return ["accuracy"]

    def evaluate(self, context):
        import numpy as np

        correct = total = 0
        for ids, labels in context.batches():
            predicted = np.asarray(context.predict(ids)).argmax(-1)
            labels = labels.numpy()
            if np.any(labels < 0):
                raise ValueError(f"{context.corpus.source}: a label is not among the run's labels "
                                 f"{context.labels.tokens} ({context.labels_file})")
            correct += int((predicted == labels).sum())
            total += len(labels)
        return {"accuracy": correct / total, "examples": total}

    def keras_answers(self, run, encoder, tokens, ids, lengths, predict, raw_scores=None):
        import tensorflow as tf

        return [answers.classify_answer(p.tolist(), run.labels) for p in predict(tf.cast(ids, tf.int32)).numpy()]

    def onnx_output(self, kind):
        return "probabilities"

    def onnx_output_axes(self):
        return ["batch", "classes"]

    def serving_signatures(self, functions):
        from keras_seq.export.savedmodel import IDS, LENGTHS, TEXT

        return {"serving_default": (functions.classify_text, [TEXT]),
                "predict_ids": (functions.classify_ids, [IDS, LENGTHS])}

    def answer_from_outputs(self, row, labels):
        names = [answers.text_of(n) for n in row["label_names"]]
        return answers.classify_answer(list(row["probabilities"]), names)

    def outputs_from_answer(self, answer, labels):
        probabilities = [answer["probabilities"].get(name, 0.0) for name in labels]
        return {"probabilities": probabilities, "label": answer["label"], "label_id": labels.index(answer["label"]),
                "label_names": labels}

    def onnx_answers(self, predictor, texts):
        ids, _ = predictor.tokenizer.encode_batch(texts)
        probabilities = predictor.session.run([predictor.output], {"ids": ids})[0]
        return [answers.classify_answer(p.tolist(), predictor.labels) for p in probabilities]

    def answer_numbers(self, answer):
        return list(answer["probabilities"].values())

