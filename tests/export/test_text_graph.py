"""The text-in graph (`keras-seq export --text-in`): the tokenizer inside the ONNX graph with
onnxruntime-extensions' string operators, answering like the tokenizer's twin and `OnnxPredictor`
on the real test corpora (IMDB reviews, every EWT test sentence) and the adversarial texts."""

from __future__ import annotations

import json
from itertools import islice

import pytest

pytest.importorskip("onnxruntime_extensions", reason="the text-in graph needs onnxruntime-extensions")

from keras_seq.export.checks.probes import adversarial_texts  # noqa: E402
from keras_seq.export.checks.text_graph import compare_text_graph  # noqa: E402
from tests.js.conformance import extra_texts  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def exports(tmp_path_factory, data_dir):
    """task -> (export dir, test texts): a classifier on IMDB reviews (head-truncated, as the shipped
    config) and a tagger on EWT (word keys lower-cased and digit-normalised), fitted briefly."""
    import keras

    import keras_seq
    from keras_seq.export import export
    from keras_seq.pipelines import TextTokenizer, text_dataset
    from keras_seq.pipelines.readers import open_corpus

    root = tmp_path_factory.mktemp("text-in")
    keras.utils.set_random_seed(0)
    imdb = open_corpus(data_dir / "imdb" / "aclImdb_v1.tar.gz", "classify")
    train = list(islice(imdb.examples("train"), 0, 25000, 50))
    tokenizer = TextTokenizer.fit([t for t, _ in train], vocab_size=5000, max_len=200, truncate="head")
    model = keras_seq.build_classifier(tokenizer.vocab_size, 2, cell="gru", units=16, embed_dim=16)
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(text_dataset([t for t, _ in train], [y for _, y in train], tokenizer=tokenizer), epochs=1, verbose=0)
    labels = sorted({y for _, y in train})
    export(model, root / "imdb", tokenizer=tokenizer, labels=labels, name="imdb", verify=False, text_in=True)
    reviews = [t for t, _ in islice(imdb.examples("test"), 0, 25000, 25)]

    ewt = open_corpus(data_dir / "ud_english_ewt", "tag")
    sentences = list(islice(ewt.examples("train"), 600))
    tags = sorted({t for _, row in sentences for t in row})
    tokenizer = TextTokenizer.fit([w for w, _ in sentences], vocab_size=3000, lower=False)
    spec_file = tokenizer.directory / "tokenizer.json"  # rule 7's word keys on, as the shipped EWT config
    spec_file.write_text(json.dumps({**json.loads(spec_file.read_text()), "lower_words": True, "zero_digits": True}))
    tokenizer = TextTokenizer.load(tokenizer.directory)
    tagger = keras_seq.build_tagger(tokenizer.vocab_size, len(tags) + 1, units=16, embed_dim=16, depth=1)
    tagger.compile("adam", "sparse_categorical_crossentropy")
    dataset = text_dataset([w for w, _ in sentences], [t for _, t in sentences], tokenizer=tokenizer, label_names=tags)
    tagger.fit(dataset, epochs=1, verbose=0)
    export(
        tagger,
        root / "ewt",
        tokenizer=tokenizer,
        labels=["<PAD>", *tags],
        task="tag",
        name="upos",
        verify=False,
        text_in=True,
    )
    test = [" ".join(words) for words, _ in ewt.examples("test")]
    return {"classify": (root / "imdb", reviews), "tag": (root / "ewt", test)}


@pytest.mark.parametrize("task", ["classify", "tag"])
def test_the_text_in_graph_answers_like_the_twin_on_the_test_corpus(exports, task):
    export_dir, texts = exports[task]
    info = json.loads((export_dir / "onnx" / "model.json").read_text())
    assert info["text_graph"]["file"] == "model_text.onnx" and info["text_graph"]["inputs"] == ["text"]
    assert "model_text.onnx" in info["files"] and "model_text.onnx" not in info["graphs"]
    probes = adversarial_texts(200) + extra_texts(200)
    report = compare_text_graph(export_dir, texts + probes)
    print(f"\n{task}: {report}")
    # every text a binding can send answers alike; invalid bytes, lone surrogates and a NUL are skipped
    assert report["mismatched"] == 0, report
    assert report["texts"] >= len(texts) and report["skipped"] == 3


def test_where_tensorflow_came_first_the_session_refuses_instead_of_answering_wrongly(exports):
    """TensorFlow's RE2 takes the place of onnxruntime-extensions' when TensorFlow is loaded first:
    every regex replace then leaves its input unchanged. The session's canary says so in one line."""
    from tests.helpers import run_python

    code = (
        "import sys\nimport tensorflow\nfrom keras_seq.serving.text_graph import text_graph_session\n"
        "text_graph_session(sys.argv[1])"
    )
    result = run_python(code, str(exports["classify"][0]))
    assert result.returncode != 0 and "TensorFlow was loaded before them" in result.stderr.splitlines()[-1]


def test_a_model_whose_answer_needs_decoding_is_refused_before_anything_is_written(tmp_path):
    import keras_seq
    from keras_seq.export import export
    from keras_seq.pipelines import TextTokenizer

    tokenizer = TextTokenizer.fit([["a", "b"], ["b", "c"]])
    tagger = keras_seq.build_tagger(tokenizer.vocab_size, 3, units=4, embed_dim=4, depth=1, crf=True)
    with pytest.raises(ValueError, match="cannot have a text-in graph: the crf answer needs decoding outside"):
        export(tagger, tmp_path / "x", tokenizer=tokenizer, labels=["<PAD>", "A", "B"], task="tag", text_in=True)
    assert not (tmp_path / "x").exists()
