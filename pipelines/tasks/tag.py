"""Tagging in the pipelines: CoNLL / CoNLL-U in, (ids[, chars], tag ids) elements, accuracy and F1."""

from __future__ import annotations

from keras_seq.pipelines.tasks.base import PIPELINE_PARTS, TaskPipeline


@PIPELINE_PARTS.register
class TagPipeline(TaskPipeline):
    name = "tag"
    monitors = ("val_loss", "val_accuracy", "val_f1")

    def read_file(self, corpus, path, split):
        from keras_seq.pipelines.readers import conll

        file = corpus.split_file(path, split)
        if file.suffix == ".conllu":
            return conll.iter_conllu(file, corpus.options.get("tag_column", "upos"))
        return conll.iter_conll_columns(file)

    def check_config(self, config):
        if config["train"]["label_smoothing"] and config["model"]["crf"]:
            raise ValueError(
                "train.label_smoothing applies to softmax outputs, not to a CRF (model.crf = true); set one of them off"
            )
        m = config["model"]
        if m["char_lm_units"] < 0:
            raise ValueError(f"model.char_lm_units must be >= 0 (0: none); received {m['char_lm_units']!r}")
        if m["char_lm_units"] and not config["data"]["char_features"]:
            raise ValueError("model.char_lm_units reads each word's characters: set data.char_features = true")

    def label_items(self, example):
        return list(example[1])

    def text_of(self, example):
        return " ".join(example[0])

    def example_signature(self):
        import tensorflow as tf

        return tf.TensorSpec([None], tf.string), tf.TensorSpec([None], tf.string)

    def token_batches(self, raw, spec):
        from keras_seq.pipelines.datasets import ENCODE_BATCH
        from keras_seq.pipelines.tokenize import normalize_tokens

        return raw.map(lambda w, t: w).ragged_batch(ENCODE_BATCH).map(lambda w: normalize_tokens(w, spec))

    def encode(self, raw, encoder, labels):
        """(ids [T], tag ids [T]), or ((ids [T], char ids [T, C]), tag ids [T]) with characters."""
        import tensorflow as tf

        from keras_seq.pipelines.batching import AUTOTUNE
        from keras_seq.pipelines.datasets import ENCODE_BATCH, unbatch_ragged
        from keras_seq.pipelines.tokenize import normalize_tokens, truncate

        spec = encoder.spec
        with_chars = encoder.char_table is not None

        def encode(words, tags):
            words = normalize_tokens(words, spec)
            tag_ids = truncate(tf.ragged.map_flat_values(labels, tags), spec)
            ids = encoder.lookup(words)
            return (ids, encoder.encode_chars(words), tag_ids) if with_chars else (ids, tag_ids)

        ds = unbatch_ragged(raw.ragged_batch(ENCODE_BATCH).map(encode, num_parallel_calls=AUTOTUNE))
        return ds.map(lambda ids, chars, tags: ((ids, chars), tags)) if with_chars else ds

    def label_vocabulary(self, counts):
        from keras_seq.contracts import Vocabulary

        return Vocabulary.build(counts, level="label")  # ids 0/1 reserved, as for words

    def validation_callbacks(self, validation, label_vocab, monitor):
        from keras_seq.pipelines.evaluate import is_bio
        from keras_seq.pipelines.fit_data import TaggingValidation

        if monitor == "val_loss":
            return []
        if monitor == "val_f1" and not is_bio(label_vocab.tokens):
            raise ValueError(
                "train.monitor = 'val_f1' needs BIO tags (B-X / I-X); this corpus's tags are "
                f"{label_vocab.tokens[2:8]}...; use 'val_accuracy'"
            )
        return [TaggingValidation(validation, label_vocab)]

    def evaluate(self, context):
        from keras_seq.pipelines.evaluate import tagging_metrics

        return tagging_metrics(context.model, context.predict, context.batches(), context.labels)
