"""Classification in the pipelines: class folders or tables in, (ids, label id) elements, accuracy."""

from __future__ import annotations

import logging

from keras_seq.pipelines.tasks.base import PIPELINE_PARTS, TaskPipeline


@PIPELINE_PARTS.register
class ClassifyPipeline(TaskPipeline):
    name = "classify"
    monitors = ("val_loss", "val_accuracy")

    def read_file(self, corpus, path, split):
        from keras_seq.pipelines.readers import class_folders, tabular

        if class_folders.is_archive(path) or (path.is_dir() and not corpus.has_tables(path)):
            labels = tuple(corpus.options.get("labels", class_folders.DEFAULT_LABELS))
            return class_folders.iter_class_folder(path, split, labels)
        return tabular.iter_table(
            corpus.split_file(path, split),
            corpus.options.get("text_column", "text"),
            corpus.options.get("label_column", "label"),
        )

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
                "class after the other)",
                ", ".join(map(str, counts)) or "none",
            )
        return Vocabulary(sorted(counts), level="label")  # classes reserve no ids

    def evaluate(self, context):
        import numpy as np

        correct = total = 0
        for ids, labels in context.batches():
            predicted = np.asarray(context.predict(ids)).argmax(-1)
            labels = labels.numpy()
            if np.any(labels < 0):
                raise ValueError(
                    f"{context.corpus.source}: a label is not among the run's labels "
                    f"{context.labels.tokens} ({context.labels_file})"
                )
            correct += int((predicted == labels).sum())
            total += len(labels)
        return {"accuracy": correct / total, "examples": total}
