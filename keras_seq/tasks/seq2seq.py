"""Sequence to sequence: a text in, a sequence of target tokens out (``targets.txt``),
through an attentional encoder-decoder; grapheme-to-phoneme conversion on CMUdict is
the shipped example (``g2p_cmudict``).

Examples are (source text, target text): the source goes through the run's tokenizer
(characters for G2P), the target is split on whitespace into tokens of the target
vocabulary, which reserves <PAD>, <UNK>, <BOS> and <EOS>. Training elements are
``((source ids [S], <BOS> y_1..y_n), y_1..y_n <EOS>)``, bucketed by source length.
Decoding is beam search (`keras_seq.decoding.batch_beam_search`) with the ``[decode]``
settings; a source whose examples name several targets (the pronunciations of a word)
counts as correct when the output equals any of them.
"""
from __future__ import annotations

import weakref

from keras_seq.contracts import answers
from keras_seq.contracts.run_dir import TARGETS_FILE
from keras_seq.contracts.vocab import BOS, BOS_ID, EOS, EOS_ID
from keras_seq.tasks.base import Task, cross_entropy

#: The ``[decode]`` config table: the beam width (1: greedy); length normalisation, score =
#: log p / (tokens + EOS)**alpha; at most floor(max_length_factor * source tokens) +
#: max_length_extra target tokens; merge_stress: rank by the probability of the stress-free
#: phone sequence, its stress variants summed (`keras_seq.decoding.merge_classes`), each
#: phone emitted with its likeliest stress.
DECODE_DEFAULTS = {"beam": 4, "alpha": 1.0, "max_length_factor": 2.0, "max_length_extra": 5, "merge_stress": False}
_steppers: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()  # model -> its Seq2SeqStepper


def decode_settings(config: dict) -> dict:
    """The run's ``[decode]`` table over the defaults (runs from before it existed get the defaults)."""
    return {**DECODE_DEFAULTS, **config.get("decode", {})}


def check_decode_settings(decode: dict) -> None:
    """A ``[decode]`` table's keys and beam width, or a one-line ValueError naming the key."""
    unknown = sorted(set(decode) - set(DECODE_DEFAULTS))
    if unknown:
        raise ValueError(f"unknown decode setting {unknown[0]!r}; the settings are {', '.join(DECODE_DEFAULTS)}")
    beam = decode.get("beam", 1)
    if isinstance(beam, bool) or not isinstance(beam, int) or beam < 1:
        raise ValueError(f"decode.beam must be a positive integer; received {beam!r}")
    if not isinstance(decode.get("merge_stress", False), bool):
        raise ValueError(f"decode.merge_stress must be true or false; received {decode['merge_stress']!r}")


def target_classes(settings: dict, targets: list[str]) -> list[int] | None:
    """The token classes the search merges under these decode settings (None: none)."""
    from keras_seq.contracts.vocab import stress_classes

    return stress_classes(targets) if settings.get("merge_stress", False) else None


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
    return {"sequence_error_rate": wrong / max(count, 1), "token_error_rate": errors / max(length, 1),
            "exact_match": 1 - wrong / max(count, 1), "sources": count, "reference_tokens": length}


class Seq2SeqTask(Task):
    name = "seq2seq"
    signature_key = "output"
    label_file = TARGETS_FILE
    level = "char"
    monitors = ("val_loss", "val_accuracy")
    transduces = True

    def read_file(self, corpus, path, split):
        from keras_seq.pipelines.readers import pairs, tabular

        file = corpus.split_file(path, split)
        if pairs.is_cmudict(file):
            return pairs.iter_cmudict(file, strip_stress=bool(corpus.options.get("strip_stress", False)))
        return tabular.iter_table(file, corpus.options.get("source_column", "source"),
                                  corpus.options.get("target_column", "target"))

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

    def build_model(self, config, vocab_size, num_labels, embedding_matrix=None, char_vocab_size=None,
                    training=True):
        import keras_seq

        m = config["model"]
        return keras_seq.build_seq2seq(vocab_size, num_labels, cell=m["cell"], units=m["units"],
                                       embed_dim=m["embed_dim"], encoder_depth=m["depth"],
                                       bidirectional_encoder=m["bidirectional"],
                                       attention=None if m["attention"] in (None, "none") else m["attention"],
                                       dropout=m["dropout"])

    def loss(self, model, label_smoothing=0.0):
        return cross_entropy(label_smoothing, from_logits=True)

    def loss_unit(self, config):
        return "tokens"  # masked: over the valid target tokens

    def metrics(self):
        return ["accuracy"]  # teacher-forced token accuracy (masked); decoding is scored by `evaluate`

    def decode_ids(self, model, config: dict, ids, targets: list[str], beam: int | None = None):
        """Best targets for padded source ids (B, S) with the run's decode settings; `targets`:
        the target vocabulary's tokens."""
        import keras_seq

        settings = decode_settings(config)
        if model not in _steppers:  # one per model: building it traces the encoder and the step
            _steppers[model] = keras_seq.Seq2SeqStepper(model)
        return _steppers[model].decode(ids, bos_id=BOS_ID, eos_id=EOS_ID, beam_width=beam or settings["beam"],
                              alpha=settings["alpha"], max_length_factor=settings["max_length_factor"],
                              max_length_extra=settings["max_length_extra"],
                              classes=target_classes(settings, targets))

    def evaluate(self, context):
        """WER / PER style rates of beam-search outputs over the split's distinct sources."""
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
            best = self.decode_ids(context.model, context.config, np.pad(ids, [[0, 0], [0, int(ids.shape[1] == 0)]]),
                                   tokens)
            for source, row in zip(chunk, best.rows()):
                outputs[source] = [tokens[i] for i in row]
        settings = decode_settings(context.config)
        result = {**error_rates(outputs, references), "beam": settings["beam"], "merge_stress": settings["merge_stress"]}
        from keras_seq.contracts.vocab import has_stress, without_stress

        if any(has_stress(ref) for refs in references.values() for ref in refs):
            # ARPAbet with stress digits (CMUdict): also the rates that ignore stress, as G2P papers often report
            plain = error_rates({s: without_stress(o) for s, o in outputs.items()},
                                {s: [without_stress(r) for r in refs] for s, refs in references.items()})
            result["without_stress"] = {k: plain[k] for k in ("sequence_error_rate", "token_error_rate")}
        return result

    def keras_answers(self, run, encoder, tokens, ids, lengths, predict, raw_scores=None):
        best = self.decode_ids(run.model, run.config, ids.numpy(), run.labels)
        return [answers.seq2seq_answer([run.labels[i] for i in row], score)
                for row, score in zip(best.rows(), best.scores)]

    # -- export ---------------------------------------------------------------------
    def onnx_output(self, kind):
        return "memory"

    def probe_inputs(self, model, rng):
        targets = rng.integers(4, max(int(model.get_layer("logits").units), 5), size=(2, 3)).astype("int32")
        targets[:, 0] = BOS_ID
        return [targets]

    def onnx_info(self, run):
        return {"decode": decode_settings(run.config)}

    def onnx_models(self, model, metadata):
        from keras_seq.export.seq2seq_onnx import seq2seq_to_onnx

        return seq2seq_to_onnx(model, metadata)

    def serving_signatures(self, functions):
        from keras_seq.export.savedmodel import IDS, LENGTHS, TEXT
        from keras_seq.export.seq2seq_graph import Seq2SeqServing

        serving = functions.cached("seq2seq", lambda: Seq2SeqServing(functions.run, functions.encoder))
        return {"serving_default": (serving.text, [TEXT]), "predict_ids": (serving.ids, [IDS, LENGTHS])}

    # -- answers --------------------------------------------------------------------
    def answer_from_outputs(self, row, labels):
        count = int(row["output_lengths"])
        return answers.seq2seq_answer([answers.text_of(t) for t in list(row["output"])[:count]], float(row["score"]))

    def outputs_from_answer(self, answer, labels):
        return {"output": answer["output"], "output_lengths": len(answer["output"]), "score": answer["score"]}

    def onnx_answers(self, predictor, texts):
        from keras_seq.serving.seq2seq import onnx_decode

        return onnx_decode(predictor, texts)

    def answer_numbers(self, answer):
        return [answer["score"]]
