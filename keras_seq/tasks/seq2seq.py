"""Sequence to sequence: a text in, a sequence of target tokens out (``targets.txt``),
through an attentional encoder-decoder; grapheme-to-phoneme conversion on CMUdict is
the shipped example (``g2p_cmudict``).

Examples are (source text, target text): the source goes through the run's tokenizer
(characters for G2P), the target is split on whitespace into tokens of the target
vocabulary, which reserves <PAD>, <UNK>, <BOS> and <EOS>. Decoding is beam search
(`keras_seq.decoding.batch_beam_search`) with the ``[decode]`` settings, which every room
reads through this module.
"""

from __future__ import annotations

import weakref

from keras_seq.contracts.run_dir import TARGETS_FILE
from keras_seq.contracts.vocab import BOS_ID, EOS_ID
from keras_seq.tasks import register_task
from keras_seq.tasks.base import Task, cross_entropy

#: The ``[decode]`` config table: the beam width (1: greedy); length normalisation, score =
#: log p / (tokens + EOS)**alpha; at most floor(max_length_factor * source tokens) +
#: max_length_extra target tokens; merge_stress: rank by the probability of the stress-free
#: phone sequence, its stress variants summed (`keras_seq.decoding.merge_classes`), each
#: phone emitted with its likeliest stress.
DECODE_DEFAULTS = {"beam": 4, "alpha": 1.0, "max_length_factor": 2.0, "max_length_extra": 5, "merge_stress": False}
_steppers: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model -> its Seq2SeqStepper


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


def decode_ids(model, config: dict, ids, targets: list[str], beam: int | None = None):
    """Best targets for padded source ids (B, S) from a Keras encoder-decoder with the run's
    decode settings; `targets`: the target vocabulary's tokens."""
    import keras_seq

    settings = decode_settings(config)
    if model not in _steppers:  # one per model: building it traces the encoder and the step
        _steppers[model] = keras_seq.Seq2SeqStepper(model)
    return _steppers[model].decode(
        ids,
        bos_id=BOS_ID,
        eos_id=EOS_ID,
        beam_width=beam or settings["beam"],
        alpha=settings["alpha"],
        max_length_factor=settings["max_length_factor"],
        max_length_extra=settings["max_length_extra"],
        classes=target_classes(settings, targets),
    )


@register_task
class Seq2SeqTask(Task):
    name = "seq2seq"
    label_file = TARGETS_FILE
    level = "char"

    def build_model(self, config, vocab_size, num_labels, embedding_matrix=None, char_vocab_size=None, training=True):
        import keras_seq

        m = config["model"]
        return keras_seq.build_seq2seq(
            vocab_size,
            num_labels,
            cell=m["cell"],
            units=m["units"],
            embed_dim=m["embed_dim"],
            encoder_depth=m["depth"],
            bidirectional_encoder=m["bidirectional"],
            attention=None if m["attention"] in (None, "none") else m["attention"],
            input_feeding=m["input_feeding"],
            dropout=m["dropout"],
        )

    def loss(self, model, label_smoothing=0.0):
        return cross_entropy(label_smoothing, from_logits=True)

    def loss_unit(self, config):
        return "tokens"  # masked: over the valid target tokens

    def metrics(self):
        return ["accuracy"]  # teacher-forced token accuracy (masked); decoding is scored by `evaluate`
