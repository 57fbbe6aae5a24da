"""`keras_seq.pipelines`: readers for real formats, the TF tokenizer and
vocabularies, length-bucketed tf.data batches, and the jobs -- `train_run`,
`evaluate_run`, `generate_text`, `corpus_stats` -- that ``keras-seq`` runs.
Needs TensorFlow (``pip install keras-seq[tf]``)."""

__all__ = ["TextTokenizer", "text_dataset"]


def __getattr__(name: str):
    if name in __all__:  # TensorFlow loads only when asked for (the CLI checks its input first)
        from keras_seq.pipelines import library

        return getattr(library, name)
    raise AttributeError(f"module 'keras_seq.pipelines' has no attribute {name!r}")
