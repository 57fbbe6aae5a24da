"""Language modelling: next-token prediction over a text stream (stateful
truncated BPTT in training), scoring and greedy generation when deployed."""

from __future__ import annotations

from keras_seq.tasks import register_task
from keras_seq.tasks.base import Task, cross_entropy


@register_task
class LanguageModelTask(Task):
    name = "lm"
    level = "char"
    stream = True
    generates = True

    def build_model(self, config, vocab_size, num_labels, embedding_matrix=None, char_vocab_size=None, training=True):
        import keras_seq

        m = config["model"]
        kwargs = dict(cell=m["cell"], embed_dim=m["embed_dim"], units=m["units"], depth=m["depth"])
        if training:  # parallel tracks carry their states from window to window
            kwargs.update(
                dropout=m["dropout"],
                recurrent_dropout=m["recurrent_dropout"],
                batch_size=config["train"]["lm_batch"],
                stateful=True,
            )
        return keras_seq.build_language_model(vocab_size, **kwargs)

    def loss(self, model, label_smoothing=0.0):
        return cross_entropy(label_smoothing, from_logits=True)

    def not_deployable(self, config):
        if config.get("model", {}).get("direction", "forward") == "backward":
            return (
                "a backward language model (model.direction = 'backward') reads text last token first; it "
                "pretrains a bidirectional model's backward half (model.init_from) and is not exported or "
                "used to generate"
            )
        return None

    def deployable(self, model, config):
        """A stateless twin with the same weights: any batch size, for export and generation."""
        twin = self.build_model(config, model.get_layer("logits").units, 0, training=False)
        twin.set_weights(model.get_weights())
        return twin
