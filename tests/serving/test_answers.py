"""The TF-free answer pieces: NumPy Viterbi == CRF.decode, LM scoring, greedy
steps, and the per-line error handling of `keras-seq predict`."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import keras_seq
from keras_seq.serving import signature_outputs as A
from keras_seq.serving.commands import answer_all, read_jsonl_texts
from keras_seq.serving.predictor import check_texts


def test_numpy_viterbi_equals_crf_decode():
    rng = np.random.default_rng(0)
    crf = keras_seq.CRF(5)
    crf.build((None, None, 5))
    crf.set_weights([rng.normal(0, 1, w.shape).astype("float32") for w in crf.get_weights()])
    emissions = rng.normal(0, 2, (6, 7, 5)).astype("float32")
    lengths = np.array([7, 1, 3, 0, 5, 2])
    mask = np.arange(7)[None, :] < lengths[:, None]
    paths = np.asarray(crf.decode(emissions, mask)[0])
    transitions, start, end = (w.numpy() for w in (crf.transitions, crf.start_scores, crf.end_scores))
    for row, n in enumerate(lengths):
        got = A.viterbi(emissions[row], int(n), transitions, start, end)
        np.testing.assert_array_equal(got, paths[row, :n])
        assert np.all(paths[row, n:] == 0)


def test_lm_scores_average_next_token_nll():
    logits = np.log(np.array([[[0.5, 0.25, 0.25], [0.1, 0.1, 0.8], [1 / 3, 1 / 3, 1 / 3]]]))
    ids = np.array([[2, 1, 2]])
    got = A.lm_scores(logits, ids, np.array([3]))[0]
    want = -(math.log(0.25) + math.log(0.8)) / 2
    assert got["tokens_scored"] == 2 and got["loss"] == pytest.approx(want)
    assert got["perplexity"] == pytest.approx(math.exp(want))
    assert A.lm_scores(logits, ids, np.array([1]))[0] == {"tokens_scored": 0, "loss": 0.0, "perplexity": 1.0}


def test_greedy_never_emits_padding():
    def step(tokens, states):
        return np.tile([[9.0, 0.0, 1.0, 0.5]], (len(tokens), 1)), states

    tokens = A.greedy_tokens(np.array([[5.0, 1.0, 0.0, 2.0]]), step, [], 3)
    assert tokens.tolist() == [[3, 2, 2]]
    assert A.join_tokens(tokens[0], ["<PAD>", "<UNK>", "a", "b"], "char") == "baa"


def test_predict_lines_report_errors_per_line(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_bytes(b'"fine"\n42\n{oops\n\xff\n"" \r\n["a"]\n')
    items = read_jsonl_texts(str(path))
    assert items[0] == "fine" and items[4] == ""
    assert "line 2: expected a JSON string, got int" in items[1][0]
    assert "line 3: not valid JSON" in items[2][0] and "line 4: not valid UTF-8" in items[3][0]
    assert "got list" in items[5][0]


def test_predict_lines_survive_huge_numbers_and_deep_nesting(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text('"a"\n' + "9" * 5000 + "\n" + "[" * 3000 + "]" * 3000 + '\n"b"\n')
    items = read_jsonl_texts(str(path))
    assert items[0] == "a" and items[3] == "b"
    assert items[1][0].startswith("line 2: not valid JSON") and items[2][0].startswith("line 3: not valid JSON")
    (tmp_path / "empty.jsonl").write_text("")
    with pytest.raises(ValueError, match="the --input file is empty"):
        read_jsonl_texts(str(tmp_path / "empty.jsonl"))

    def predict(texts):
        if any(t == "boom" for t in texts):
            raise ValueError("cannot take boom")
        return [{"n": len(t)} for t in texts]

    out = answer_all(predict, ["ab", ("line 2: bad",), "boom", "c"])
    assert out == [{"n": 2}, {"error": "line 2: bad"}, {"error": "ValueError: cannot take boom"}, {"n": 1}]
    json.dumps(out)


def test_predictors_reject_non_text():
    with pytest.raises(TypeError, match="texts\\[1\\] is int"):
        check_texts(["a", 3])
    with pytest.raises(TypeError, match="a list of strings"):
        check_texts("abc")
    # token lists: taggers only, and every token a string
    assert check_texts(["a b", ["a", b"b"], ()], token_lists=True) == ["a b", ["a", b"b"], ()]
    with pytest.raises(TypeError, match="texts\\[0\\] is a list: token lists are answered by taggers only"):
        check_texts([["a"]])
    with pytest.raises(TypeError, match="texts\\[1\\]\\[1\\] is NoneType, expected a token string"):
        check_texts(["a", ["b", None]], token_lists=True)
