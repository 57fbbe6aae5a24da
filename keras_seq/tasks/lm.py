"""Language modelling: next-token prediction over a text stream (stateful
truncated BPTT in training), scoring and greedy generation when deployed."""
from __future__ import annotations

from keras_seq.contracts import answers
from keras_seq.tasks.base import Task, cross_entropy


class LanguageModelTask(Task):
    name = "lm"
    signature_key = "loss"
    level = "char"
    report_split = "validation"
    text_signatures = ("serving_default", "generate")
    own_validation = True  # the 90/10 split of one text, or the source's own files
    stream = True

    def read_file(self, corpus, path, split):
        from keras_seq.pipelines.readers import plain_text

        text = plain_text.read_text(corpus.split_file(path, split))
        if path.is_file():
            parts = plain_text.split_text(text, corpus.options.get("train_fraction", 0.9))
            text = parts["train" if split == "train" else "validation"]
        return iter([text])

    def from_tfds(self, items):
        return iter(["".join(items)])

    def sample_texts(self, corpus, n):
        held_out = "".join(corpus.examples("validation"))
        width = min(300, max(1, len(held_out) // n))
        return [held_out[i * width : (i + 1) * width] for i in range(n) if held_out[i * width : (i + 1) * width]]

    def example_signature(self):
        import tensorflow as tf

        return tf.TensorSpec([], tf.string)

    def token_batches(self, raw, spec):
        from keras_seq.pipelines.datasets import ENCODE_BATCH
        from keras_seq.pipelines.tokenize import tokenize

        return raw.batch(ENCODE_BATCH).map(lambda t: tokenize(t, spec))

    def encode(self, raw, encoder, labels):
        from keras_seq.pipelines.datasets import unbatch_ragged

        return unbatch_ragged(raw.batch(1).map(lambda t: encoder.encode(t)))

    def build_model(self, config, vocab_size, num_labels, embedding_matrix=None, char_vocab_size=None,
                    training=True):
        import keras_seq

        m = config["model"]
        kwargs = dict(cell=m["cell"], embed_dim=m["embed_dim"], units=m["units"], depth=m["depth"])
        if training:  # parallel tracks carry their states from window to window
            kwargs.update(dropout=m["dropout"], recurrent_dropout=m["recurrent_dropout"],
                          batch_size=config["train"]["lm_batch"], stateful=True)
        return keras_seq.build_language_model(vocab_size, **kwargs)

    def loss(self, model, label_smoothing=0.0):
        return cross_entropy(label_smoothing, from_logits=True)

    def fit_data(self, setup):
        from keras_seq.pipelines.train import stream_fit_data

        return stream_fit_data(setup)

    def deployable(self, model, config):
        """A stateless twin with the same weights: any batch size, for export and generation."""
        twin = self.build_model(config, model.get_layer("logits").units, 0, training=False)
        twin.set_weights(model.get_weights())
        return twin

    def evaluate(self, context):
        from keras_seq.pipelines.evaluate import evaluate_stream

        return evaluate_stream(context)

    def keras_answers(self, run, encoder, tokens, ids, lengths, predict, raw_scores=None):
        import tensorflow as tf

        from keras_seq.serving.answers import lm_scores

        return lm_scores(predict(tf.cast(ids, tf.int32)).numpy(), ids.numpy(), lengths)

    def onnx_output(self, kind):
        return "logits"

    def serving_signatures(self, functions):
        from keras_seq.export.savedmodel import IDS, LENGTHS, TEXT

        return {"serving_default": (functions.score_text, [TEXT]), "generate": (functions.generate_text, [TEXT]),
                "score_ids": (functions.score_ids, [IDS, LENGTHS])}

    def answer_from_outputs(self, row, labels):
        return answers.lm_answer(float(row["loss"]), int(row["tokens_scored"]))

    def outputs_from_answer(self, answer, labels):
        return {"loss": answer["loss"], "perplexity": answer["perplexity"], "tokens_scored": answer["tokens_scored"]}

    def onnx_answers(self, predictor, texts):
        from keras_seq.serving.answers import lm_scores

        ids, lengths = predictor.tokenizer.encode_batch(texts)
        logits = predictor.session.run([predictor.output], {"ids": ids, **predictor.zero_states(len(texts))})[0]
        return lm_scores(logits, ids, lengths)

    def answer_numbers(self, answer):
        return [answer["loss"]]
