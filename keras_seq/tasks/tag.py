"""Sequence tagging: one tag per token (``tags.txt``), softmax or CRF output."""

from __future__ import annotations

from keras_seq.contracts.run_dir import TAGS_FILE
from keras_seq.tasks import register_task
from keras_seq.tasks.base import Task


@register_task
class TagTask(Task):
    name = "tag"
    label_file = TAGS_FILE
    character_features = True

    def build_model(self, config, vocab_size, num_labels, embedding_matrix=None, char_vocab_size=None, training=True):
        import keras_seq

        m = config["model"]
        return keras_seq.build_tagger(
            vocab_size,
            num_labels,
            crf=m["crf"],
            embedding_matrix=embedding_matrix,
            char_vocab_size=char_vocab_size,
            char_embed_dim=m["char_embed_dim"],
            char_units=m["char_units"],
            char_lm_units=m["char_lm_units"],
            char_lm_embed_dim=m["char_lm_embed_dim"],
            char_lm_cell=m["char_lm_cell"],
            cell=m["cell"],
            embed_dim=m["embed_dim"],
            units=m["units"],
            depth=m["depth"],
            dropout=m["dropout"],
            recurrent_dropout=m["recurrent_dropout"],
        )

    def loss(self, model, label_smoothing=0.0):
        import keras_seq

        return keras_seq.tagger_loss(model, label_smoothing)

    def loss_unit(self, config):
        return "rows" if config["model"]["crf"] else "tokens"  # the CRF's NLL is one per sentence


def crf_layer(model):
    """The model's CRF output layer, or None."""
    import keras_seq

    found = [layer for layer in model.layers if isinstance(layer, keras_seq.CRF)]
    return found[0] if found else None
