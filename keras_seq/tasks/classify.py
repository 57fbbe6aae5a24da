"""Text classification: a text in, one label out (``labels.txt``)."""

from __future__ import annotations

from keras_seq.contracts.run_dir import LABELS_FILE
from keras_seq.tasks import register_task
from keras_seq.tasks.base import Task


@register_task
class ClassifyTask(Task):
    name = "classify"
    label_file = LABELS_FILE

    def build_model(self, config, vocab_size, num_labels, embedding_matrix=None, char_vocab_size=None, training=True):
        import keras_seq

        m = config["model"]
        return keras_seq.build_classifier(
            vocab_size,
            num_labels,
            bidirectional=m["bidirectional"],
            pooling=m["pooling"],
            embedding_matrix=embedding_matrix,
            cell=m["cell"],
            embed_dim=m["embed_dim"],
            units=m["units"],
            depth=m["depth"],
            dropout=m["dropout"],
            recurrent_dropout=m["recurrent_dropout"],
        )

    def metrics(self):
        return ["accuracy"]
