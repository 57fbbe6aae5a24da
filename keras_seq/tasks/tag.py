"""Sequence tagging: one tag per token (``tags.txt``), softmax or CRF output."""
from __future__ import annotations

from keras_seq.contracts import answers
from keras_seq.contracts.run_dir import TAGS_FILE
from keras_seq.tasks.base import Task


class TagTask(Task):
    name = "tag"
    signature_key = "tags"
    label_file = TAGS_FILE
    monitors = ("val_loss", "val_accuracy", "val_f1")
    character_features = True
    takes_token_lists = True

    def read_file(self, corpus, path, split):
        from keras_seq.pipelines.readers import conll

        file = corpus.split_file(path, split)
        if file.suffix == ".conllu":
            return conll.iter_conllu(file, corpus.options.get("tag_column", "upos"))
        return conll.iter_conll_columns(file)

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

    def build_model(self, config, vocab_size, num_labels, embedding_matrix=None, char_vocab_size=None,
                    training=True):
        import keras_seq

        m = config["model"]
        return keras_seq.build_tagger(
            vocab_size, num_labels, crf=m["crf"], embedding_matrix=embedding_matrix,
            char_vocab_size=char_vocab_size, char_embed_dim=m["char_embed_dim"], char_units=m["char_units"],
            cell=m["cell"], embed_dim=m["embed_dim"], units=m["units"], depth=m["depth"], dropout=m["dropout"],
            recurrent_dropout=m["recurrent_dropout"])

    def loss(self, model, label_smoothing=0.0):
        import keras_seq

        return keras_seq.tagger_loss(model, label_smoothing)

    def loss_unit(self, config):
        return "rows" if config["model"]["crf"] else "tokens"  # the CRF's NLL is one per sentence

    def validation_callbacks(self, validation, label_vocab, monitor):
        from keras_seq.pipelines.evaluate import is_bio
        from keras_seq.pipelines.train import TaggingValidation

        if monitor == "val_loss":
            return []
        if monitor == "val_f1" and not is_bio(label_vocab.tokens):
            raise ValueError("train.monitor = 'val_f1' needs BIO tags (B-X / I-X); this corpus's tags are "
                             f"{label_vocab.tokens[2:8]}...; use 'val_accuracy'")
        return [TaggingValidation(validation, label_vocab)]

    def evaluate(self, context):
        from keras_seq.pipelines.evaluate import tagging_metrics

        return tagging_metrics(context.model, context.predict, context.batches(), context.labels)

    def keras_answers(self, run, encoder, tokens, ids, lengths, predict, raw_scores=None):
        import tensorflow as tf

        inputs = tf.cast(ids, tf.int32)
        if run.char_features:
            chars = encoder.encode_chars(tokens).to_tensor(0)
            chars = tf.pad(chars, [[0, 0], [0, tf.shape(ids)[1] - tf.shape(chars)[1]],
                                   [0, tf.maximum(0, 1 - tf.shape(chars)[2])]])
            inputs = [inputs, tf.cast(chars, tf.int32)]
        scores = predict(inputs)
        if raw_scores is not None:
            raw_scores += [row[:n] for row, n in zip(scores.numpy(), lengths)]
        mask = tf.sequence_mask(lengths, tf.shape(ids)[1])
        tag_ids = run.crf.decode(scores, mask)[0].numpy() if run.crf is not None else scores.numpy().argmax(-1)
        return [answers.tag_answer([t.decode("utf-8") for t in row_tokens], row_tags, run.labels)
                for row_tokens, row_tags in zip(tokens.to_list(), tag_ids)]

    def kind(self, model):
        return "crf" if crf_layer(model) is not None else self.name

    def onnx_output(self, kind):
        return "emissions" if kind == "crf" else "probabilities"

    def serving_signatures(self, functions):
        from keras_seq.export.savedmodel import CHARS, IDS, LENGTHS, TEXT

        ids_inputs = [IDS, LENGTHS, CHARS] if functions.char_features else [IDS, LENGTHS]
        return {"serving_default": (functions.tag_text, [TEXT]), "predict_ids": (functions.tag_ids, ids_inputs)}

    def padding_probe(self, plain, padded, ids):
        valid = ids != 0
        return plain[valid], padded[:, : ids.shape[1]][valid]

    def answer_from_outputs(self, row, labels):
        n = int(row["lengths"])
        return {"tokens": [answers.text_of(t) for t in list(row["tokens"])[:n]],
                "tags": [answers.text_of(t) for t in list(row["tags"])[:n]]}

    def outputs_from_answer(self, answer, labels):
        return {"tokens": answer["tokens"], "tags": answer["tags"], "lengths": len(answer["tokens"])}

    def onnx_scores(self, predictor, texts: list) -> tuple[list, list]:
        """(tokens per text, per-token scores per text): tag probabilities, or the CRF's emissions.
        A text may be a list of tokens, taken as split (`TextTokenizer.given_tokens`)."""
        import numpy as np

        from keras_seq.serving.text import pad_rows

        tokenizer = predictor.tokenizer
        tokens = [tokenizer.tokens(t) if isinstance(t, (str, bytes)) else tokenizer.given_tokens(t) for t in texts]
        feeds = {"ids": pad_rows([tokenizer.lookup(row) for row in tokens])}
        if tokenizer.char_vocab is not None:
            words = [tokenizer.word_chars(row) for row in tokens]
            width = max([1, *(len(w) for row in words for w in row)])
            chars = np.zeros(feeds["ids"].shape + (width,), np.int64)
            for i, row in enumerate(words):
                for j, word in enumerate(row):
                    chars[i, j, : len(word)] = word
            feeds["chars"] = chars
        scores = predictor.session.run([predictor.output], feeds)[0]
        return tokens, [row[: len(row_tokens)] for row_tokens, row in zip(tokens, scores)]

    def onnx_answers(self, predictor, texts):
        from keras_seq.serving.answers import viterbi

        tokens, scores = self.onnx_scores(predictor, texts)
        out = []
        for row_tokens, row_scores in zip(tokens, scores):
            n = len(row_tokens)
            crf = predictor.crf
            tag_ids = viterbi(row_scores, n, *crf) if crf is not None else row_scores[:n].argmax(-1)
            out.append(answers.tag_answer(row_tokens, tag_ids, predictor.labels))
        return out


def crf_layer(model):
    """The model's CRF output layer, or None."""
    import keras_seq

    found = [layer for layer in model.layers if isinstance(layer, keras_seq.CRF)]
    return found[0] if found else None

