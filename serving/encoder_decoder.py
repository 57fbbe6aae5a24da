"""Encoder-decoders beside ONNX Runtime: the encoder graph once per batch of texts, then
`keras_seq.decoding.batch_beam_search` (NumPy; the arithmetic and tie-breaking of the
SavedModel's in-graph search) over the decoder-step graph (`export.seq2seq_onnx`)."""

from __future__ import annotations

import numpy as np

from keras_seq import decoding
from keras_seq.contracts import answers
from keras_seq.contracts.export_dir import DECODER_STEP_FILE
from keras_seq.contracts.vocab import BOS_ID, EOS_ID
from keras_seq.tasks.seq2seq import target_classes


def onnx_decode(predictor, texts: list) -> list[dict]:
    """Answers for one chunk of texts: the best target (tokens) and its score."""
    ids, _ = predictor.tokenizer.encode_batch(texts)
    encoder = predictor.session
    encoded = dict(zip([o.name for o in encoder.get_outputs()], encoder.run(None, {"ids": ids})))
    settings = predictor.info["decode"]
    width = int(settings["beam"])
    step_graph = predictor.extra_sessions[DECODER_STEP_FILE]
    carry_names = [i.name for i in step_graph.get_inputs() if i.name.startswith("state_") or i.name == "attentional"]
    output_names = ["log_probs", *[f"{name}_out" for name in carry_names]]
    mask = ids != 0
    rows = np.repeat(np.arange(len(ids)), width)
    fixed = {"memory": encoded["memory"][rows], "memory_mask": mask[rows]}
    if "keys" in encoded:
        fixed["keys"] = encoded["keys"][rows]
    carry = [encoded[name] if name in encoded else np.zeros_like(encoded["state_h"]) for name in carry_names]

    def step(tokens, carry):
        result = step_graph.run(
            output_names, {"token": tokens.astype(np.int64), **dict(zip(carry_names, carry)), **fixed}
        )
        return result[0], result[1:]

    max_lengths = decoding.max_target_lengths(
        mask.sum(axis=1), float(settings["max_length_factor"]), int(settings["max_length_extra"])
    )
    best = decoding.batch_beam_search(
        step,
        carry,
        max_lengths,
        bos_id=BOS_ID,
        eos_id=EOS_ID,
        beam_width=width,
        alpha=float(settings["alpha"]),
        classes=target_classes(settings, list(predictor.labels)),
    )
    return [
        answers.seq2seq_answer([predictor.labels[i] for i in row], score)
        for row, score in zip(best.rows(), best.scores)
    ]
