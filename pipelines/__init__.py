"""`keras_seq.pipelines`: readers for real formats, the TF tokenizer and
vocabularies, length-bucketed tf.data batches, and the jobs -- `train_run`,
`evaluate_run`, `generate_text`, `corpus_stats` -- that ``keras-seq`` runs.
Needs TensorFlow (``pip install keras-seq[tf]``)."""
