"""Encoder-decoders in the pipelines: (source, target) pairs in, teacher-forced elements
``((source ids [S], <BOS> y_1..y_n), y_1..y_n <EOS>)``, and WER / PER style rates of the
beam-search outputs. A source whose examples name several targets (the pronunciations of a
word) counts as correct when the output equals any of them."""

from __future__ import annotations

from keras_seq.contracts.vocab import BOS, BOS_ID, EOS, EOS_ID
from keras_seq.pipelines.tasks.base import PIPELINE_PARTS, TaskPipeline
from keras_seq.tasks.seq2seq import decode_ids, decode_settings


def edit_distance(a: list, b: list) -> int:
    """Levenshtein distance between two token lists."""
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        current = [i]
        for j, y in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x != y)))
        previous = current
    return previous[-1]


def error_rates(outputs: dict, references: dict) -> dict:
    """Sequence and token error rates over sources: `outputs` source -> token list,
    `references` source -> list of acceptable token lists. A source is right when its output
    equals any reference; its token errors are the edit distance to the closest reference,
    over that reference's length (for G2P: WER and PER)."""
    wrong = errors = length = 0
    for source, refs in references.items():
        output = outputs[source]
        distance, ref = min((edit_distance(output, r), r) for r in refs)
        wrong += distance > 0
        errors += distance
        length += len(ref)
    count = len(references)
    return {
        "sequence_error_rate": wrong / max(count, 1),
        "token_error_rate": errors / max(length, 1),
        "exact_match": 1 - wrong / max(count, 1),
        "sources": count,
        "reference_tokens": length,
    }


@PIPELINE_PARTS.register
class Seq2SeqPipeline(TaskPipeline):
    name = "seq2seq"
    monitors = ("val_loss", "val_accuracy")
    transduces = True

    def read_file(self, corpus, path, split):
        from keras_seq.pipelines.readers import pairs, tabular

        file = corpus.split_file(path, split)
        if pairs.is_cmudict(file):
            return pairs.iter_cmudict(file, strip_stress=bool(corpus.options.get("strip_stress", False)))
        return tabular.iter_table(
            file, corpus.options.get("source_column", "source"), corpus.options.get("target_column", "target")
        )

    def sample_texts(self, corpus, n):
        """About `n` distinct held-out sources, spread over the sorted test split."""
        sources = sorted({source for source, _ in corpus.examples("test")})
        return sources[:: max(1, len(sources) // n)][:n]

    def label_items(self, example):
        return example[1].split()

    def example_signature(self):
        import tensorflow as tf

        return tf.TensorSpec([], tf.string), tf.TensorSpec([], tf.string)

    def token_batches(self, raw, spec):
        from keras_seq.pipelines.datasets import ENCODE_BATCH
        from keras_seq.pipelines.tokenize import tokenize

        return raw.map(lambda source, target: source).batch(ENCODE_BATCH).map(lambda t: tokenize(t, spec))

    def encode(self, raw, encoder, labels):
        import tensorflow as tf

        from keras_seq.pipelines.batching import AUTOTUNE
        from keras_seq.pipelines.datasets import ENCODE_BATCH, unbatch_ragged

        def encode(source, target):
            ids = labels(tf.strings.split(target))  # ragged (B, None); unknown tokens -> <UNK>
            rows = ids.nrows()
            bos = tf.fill([rows, 1], tf.constant(BOS_ID, ids.dtype))
            eos = tf.fill([rows, 1], tf.constant(EOS_ID, ids.dtype))
            return encoder.encode(source), tf.concat([bos, ids], axis=1), tf.concat([ids, eos], axis=1)

        ds = unbatch_ragged(raw.batch(ENCODE_BATCH).map(encode, num_parallel_calls=AUTOTUNE))
        return ds.map(lambda source, target_in, target_out: ((source, target_in), target_out))

    def label_vocabulary(self, counts):
        from keras_seq.contracts import Vocabulary
        from keras_seq.contracts.tokenizer import PAD, UNK

        kept = sorted((t for t in counts if t not in (PAD, UNK, BOS, EOS)), key=lambda t: (-counts[t], t))
        return Vocabulary([PAD, UNK, BOS, EOS, *kept], level="label")

    def evaluate(self, context):
        """WER / PER style rates of beam-search outputs over the split's distinct sources."""
        from keras_seq.contracts.vocab import has_stress, without_stress

        outputs, references = self.transduce_split(context)
        settings = decode_settings(context.config)
        result = {
            **error_rates(outputs, references),
            "beam": settings["beam"],
            "merge_stress": settings["merge_stress"],
        }
        if any(has_stress(ref) for refs in references.values() for ref in refs):
            # ARPAbet with stress digits (CMUdict): also the rates that ignore stress, as G2P papers often report
            plain = error_rates(
                {s: without_stress(o) for s, o in outputs.items()},
                {s: [without_stress(r) for r in refs] for s, refs in references.items()},
            )
            result["without_stress"] = {k: plain[k] for k in ("sequence_error_rate", "token_error_rate")}
        return result

    def transduce_split(self, context) -> tuple[dict, dict]:
        """The beam-search output of each distinct source of the split (source -> tokens), and its
        references (source -> list of token lists): what `evaluate` scores, for paired comparisons."""
        import numpy as np

        references: dict = {}
        for source, target in context.corpus.examples(context.split):
            if source not in references and context.limit is not None and len(references) == context.limit:
                break
            references.setdefault(source, []).append(target.split())
        if not references:
            raise ValueError(f"{context.corpus.source}: the {context.split} split holds no examples")
        sources = sorted(references, key=len)
        outputs, tokens = {}, context.labels.tokens
        for start in range(0, len(sources), 256):
            chunk = sources[start : start + 256]
            ids = context.encoder.encode(np.array(chunk, dtype=object)).to_tensor(0).numpy()
            best = decode_ids(context.model, context.config, np.pad(ids, [[0, 0], [0, int(ids.shape[1] == 0)]]), tokens)
            for source, row in zip(chunk, best.rows()):
                outputs[source] = [tokens[i] for i in row]
        return outputs, references
