"""Language models in the pipelines: one text stream per split, windows of it, perplexity."""

from __future__ import annotations

from keras_seq.pipelines.tasks.base import PIPELINE_PARTS, TaskPipeline


@PIPELINE_PARTS.register
class LanguageModelPipeline(TaskPipeline):
    name = "lm"
    report_split = "validation"
    own_validation = True  # the 90/10 split of one text, or the source's own files

    def read_file(self, corpus, path, split):
        from keras_seq.pipelines.readers import class_folders, plain_text

        if self._class_folders(path):  # labels dropped; `Corpus` holds the classifier's validation texts out
            labels = tuple(corpus.options.get("labels", class_folders.DEFAULT_LABELS))
            return (text for text, _label in class_folders.iter_class_folder(path, split, labels))
        text = plain_text.read_text(corpus.split_file(path, split))
        if path.is_file():
            parts = plain_text.split_text(text, corpus.options.get("train_fraction", 0.9))
            text = parts["train" if split == "train" else "validation"]
        return iter([text])

    @staticmethod
    def _class_folders(path) -> bool:
        from keras_seq.pipelines.readers import class_folders

        return class_folders.is_archive(path) or class_folders.has_split_folders(path)

    def has_own_validation(self, path):
        """A class-folder corpus (a classifier's data) has train and test only: validation is held out of
        train as a classifier's run holds it out, so the classifier's validation texts stay unseen."""
        return not self._class_folders(path)

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

    def fit_data(self, setup):
        from keras_seq.pipelines.fit_data import stream_fit_data

        return stream_fit_data(setup)

    def start_weights(self, model, fit, config):
        """A word-level model's output bias starts at the training stream's unigram log-probabilities
        (`keras_seq.build_language_model`'s ``output_bias`` says why). Character-level models start
        from zero, as before: the shipped one never sat at its unigram."""
        import keras_seq

        if config["data"]["level"] != "word":
            return

        logits = model.get_layer("logits")
        logits.bias.assign(keras_seq.unigram_log_probs(fit.stream, logits.units))

    def evaluate(self, context):
        from keras_seq.pipelines.evaluate import evaluate_stream

        return evaluate_stream(context)
