"""Pretrain, then fine-tune, through the pipelines: forward and backward language models of a
class-folder corpus's training texts, then the shipped fine-tuning config starting from them."""

from __future__ import annotations

import numpy as np
import pytest

from keras_seq.pipelines.config import load_config
from keras_seq.pipelines.evaluate import lm_stream
from keras_seq.pipelines.readers import open_corpus
from keras_seq.pipelines.train import train_run
from keras_seq.pipelines.vocab import TextEncoder

TINY_LM = [
    "model.units=16",
    "model.embed_dim=16",
    "data.vocab_size=600",
    "train.epochs=1",
    "train.lm_batch=8",
    "train.lm_window=20",
]


@pytest.fixture(scope="module")
def class_folders(tmp_path_factory, data_dir):
    """ROOT/{train,test}/{neg,pos}/*.txt: 80 training and 20 test reviews per class, from the real archive."""
    root = tmp_path_factory.mktemp("imdb_folders")
    reviews = list(open_corpus(data_dir / "imdb" / "aclImdb_v1.tar.gz", "classify").examples("test"))
    by_label = {"neg": [t for t, label in reviews[:200] if label == "neg"], "pos": [t for t, label in reviews[-200:]]}
    for label, texts in by_label.items():
        for split, rows in (("train", texts[:80]), ("test", texts[80:100])):
            folder = root / split / label
            folder.mkdir(parents=True)
            for i, text in enumerate(rows):
                (folder / f"{i}_1.txt").write_text(text, encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def language_models(tmp_path_factory, class_folders):
    runs = tmp_path_factory.mktemp("lms")
    metrics = {}
    for direction in ("forward", "backward"):
        config = load_config(
            "pipelines/configs/imdb_lm.toml",
            [f'data.source="{class_folders}"', f'model.direction="{direction}"', *TINY_LM],
        )
        metrics[direction] = train_run(config, runs / direction, verbose=0)
    return runs, metrics


@pytest.mark.slow
def test_a_language_model_reads_a_classifiers_training_texts_and_holds_out_its_validation(class_folders):
    lm, classify = open_corpus(class_folders, "lm"), open_corpus(class_folders, "classify")
    for split in ("train", "validation", "test"):
        assert list(lm.examples(split)) == [text for text, _ in classify.examples(split)], split
    assert len(list(lm.examples("validation"))) == 16  # every 10th of 160


@pytest.mark.slow
def test_pretrained_language_models_start_the_fine_tuned_classifier(tmp_path, class_folders, language_models):
    from keras_seq.export import export_run
    from keras_seq.pipelines.generate import generate_text

    runs, lm_metrics = language_models
    assert lm_metrics["forward"]["validation"]["tokens"] == lm_metrics["backward"]["validation"]["tokens"]
    corpus, encoder = open_corpus(class_folders, "lm"), TextEncoder(runs / "forward")
    forward = lm_stream(corpus, "validation", encoder)
    np.testing.assert_array_equal(lm_stream(corpus, "validation", encoder, "backward"), forward[::-1])
    for refused in (
        lambda: export_run(runs / "backward", tmp_path / "export"),
        lambda: generate_text(runs / "backward", "a"),
    ):
        with pytest.raises(ValueError, match="a backward language model .* is not exported"):
            refused()

    config = load_config(
        "pipelines/configs/imdb_finetune.toml",
        [
            f'data.source="{class_folders}"',
            f'model.init_from=["{runs / "forward"}", "{runs / "backward"}"]',
            "model.units=16",
            "model.embed_dim=16",
            "data.max_len=120",
            "train.epochs=3",
        ],
    )
    metrics = train_run(config, tmp_path / "run", verbose=0)
    loaded = metrics["init_from"]["loaded"]
    assert loaded[1:] == ["bi_gru_0 (forward) <- gru_0", "bi_gru_0 (backward) <- gru_0"]
    assert loaded[0].startswith("embedding <- embedding (") and loaded[0].endswith("rows, matched by token)")
    assert metrics["init_from"]["not_loaded"] == [] and metrics["epochs_run"] == 3
    assert 0.0 <= metrics["test"]["accuracy"] <= 1.0 and metrics["test"]["examples"] == 40


@pytest.mark.parametrize(
    "override, message",
    [
        ("model.init_from=3", "model.init_from must be a run directory or a list"),
        ("model.init_from=[3]", "model.init_from must be a run directory or a list"),
        ("train.discriminative_decay=0.5", "train.discriminative_decay must be a number >= 1"),
        ("train.gradual_unfreezing=-1", "train.gradual_unfreezing must be 0"),
        ("train.stlr_cut_fraction=1.5", r"train.stlr_cut_fraction must be a number in \(0, 1\)"),
        ('model.pooling="median"', "model.pooling"),
        ("train.ema_momentum=1.5", r"train.ema_momentum must be a number in \(0, 1\)"),
    ],
)
def test_fine_tuning_settings_are_checked_with_the_key_named(override, message):
    with pytest.raises(ValueError, match=message):
        load_config("pipelines/configs/imdb_finetune.toml", [override])


def test_an_empty_list_switches_the_pretrained_start_off():
    assert load_config("pipelines/configs/imdb_finetune.toml", ["model.init_from=[]"])["model"]["init_from"] is None


def test_a_missing_pretrained_run_fails_before_any_data_is_read(tmp_path):
    config = load_config(
        "pipelines/configs/imdb_finetune.toml", [f'model.init_from="{tmp_path / "nope"}"', 'data.source="."']
    )
    with pytest.raises(FileNotFoundError, match=r"^model.init_from: .*nope: no run directory there"):
        train_run(config, tmp_path / "run", verbose=0)


@pytest.fixture(scope="module")
def character_language_models(tmp_path_factory, class_folders):
    """A forward and a backward character LM (the shipped imdb_char_lm config, tiny) of the reviews."""
    runs = tmp_path_factory.mktemp("char_lms")
    for direction in ("forward", "backward"):
        config = load_config(
            "pipelines/configs/imdb_char_lm.toml",
            [
                f'data.source="{class_folders}"',
                f'model.direction="{direction}"',
                "model.units=8",
                "model.embed_dim=4",
                "data.limit=40",
                "train.lm_batch=8",
                "train.lm_window=30",
            ],
        )
        train_run(config, runs / direction, verbose=0)
    return runs


def _ewt_slice(folder, data_dir, sentences: int = 120) -> None:
    for split in ("train", "dev", "test"):
        text = (data_dir / "ud_english_ewt" / f"en_ewt-ud-{split}.conllu").read_text(encoding="utf-8")
        (folder / f"slice-{split}.conllu").write_text(
            "\n\n".join(text.split("\n\n")[:sentences]) + "\n\n", encoding="utf-8"
        )


@pytest.mark.slow
def test_character_lms_give_a_tagger_frozen_contextual_features(tmp_path, data_dir, character_language_models):
    import keras

    runs = character_language_models
    _ewt_slice(tmp_path, data_dir)
    small = [f'data.source="{tmp_path}"', "model.units=16", "model.embed_dim=16", "model.depth=1", "train.epochs=1"]
    sized = ["model.char_lm_units=8", "model.char_lm_embed_dim=4"]
    config = load_config(
        "pipelines/configs/ewt_upos_char_lm.toml",
        [*small, *sized, f'model.init_from=["{runs / "forward"}", "{runs / "backward"}"]'],
    )
    metrics = train_run(config, tmp_path / "run", verbose=0)
    loaded = metrics["init_from"]["loaded"]
    assert [line.split(" <- ")[0] for line in loaded] == [
        "char_context (forward) forward_embedding",
        "char_context (forward)",
        "char_context (backward) backward_embedding",
        "char_context (backward)",
    ]
    assert loaded[0].endswith("rows, matched by token)") and metrics["init_from"]["not_loaded"] == []
    assert 0.0 <= metrics["test"]["token_accuracy"] <= 1.0
    # Frozen (model.char_lm_trainable = false): after training, the layer holds the LMs' weights.
    tagger = keras.saving.load_model(tmp_path / "run" / "model.keras", compile=False).get_layer("char_context")
    for direction in ("forward", "backward"):
        lm = keras.saving.load_model(runs / direction / "model.keras", compile=False).get_layer("lstm_0")
        for mine, theirs in zip(getattr(tagger, f"{direction}_lm").get_weights(), lm.get_weights()):
            np.testing.assert_array_equal(mine, theirs)
    # Frozen features need both LMs: refused before any data is read.
    one = load_config(
        "pipelines/configs/ewt_upos_char_lm.toml", [*small, *sized, f'model.init_from="{runs / "forward"}"']
    )
    with pytest.raises(ValueError, match="model.char_lm_units: model.init_from has no backward character"):
        train_run(one, tmp_path / "one", verbose=0)


def test_contextual_characters_need_the_words_characters():
    with pytest.raises(ValueError, match="model.char_lm_units reads each word's characters"):
        load_config("pipelines/configs/ewt_upos_char_lm.toml", ["data.char_features=false"])
