"""`keras_seq.pipelines`: readers for real formats, the TF tokenizer and
vocabularies, length-bucketed tf.data batches, and the jobs -- `train_run`,
`evaluate_run`, `generate_text`, `corpus_stats` -- that ``keras-seq`` runs;
`make_strategy` / `replica_batches` for training on several replicas or workers
(`keras_seq.pipelines.distribute`). Needs TensorFlow (``pip install keras-seq[tf]``)."""

_EXPORTS = {
    "TextTokenizer": "text_api",
    "text_dataset": "text_api",
    "make_strategy": "distribute",
    "replica_batches": "distribute",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:  # TensorFlow loads only when asked for (the CLI checks its input first)
        import importlib

        return getattr(importlib.import_module(f"keras_seq.pipelines.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'keras_seq.pipelines' has no attribute {name!r}")
