"""`Task`: everything that differs between tasks, in one object per task.

A task says how to read its examples, turn them into tf.data elements, build
and compile its model, score it, write its export signatures, answer from the
ONNX graph and shape its answers. The rooms ask the registry
(`keras_seq.tasks.get_task`) and never branch on a task's name.

Import-time this module (and each task module) needs only the contracts: the
TF-free serving side uses the answer half. The TensorFlow half of a method
imports what it needs when it runs.
"""
from __future__ import annotations

from typing import Any, Iterator

#: Per example, what readers yield: classify (text, label), tag (tokens, tags), lm one text per split.
Example = Any


class Task:
    """The interface; `keras_seq.tasks.classify` / `tag` / `lm` implement it."""

    name: str = ""
    #: The label file in run and export directories (contracts.run_dir), or None.
    label_file: str | None = None
    #: Default tokenizer level.
    level: str = "word"
    #: Validation quantities `train.monitor` may name.
    monitors: tuple[str, ...] = ("val_loss",)
    #: The split `train` reports as its held-out result.
    report_split: str = "test"
    #: An output of ``serving_default`` that only this task's rows carry.
    signature_key: str = ""
    #: Signatures that take raw text (the first is serving_default).
    text_signatures: tuple[str, ...] = ("serving_default",)
    #: A source of this task always has its own validation split (no holding out).
    own_validation: bool = False
    #: Models can also read each word's characters (`data.char_features`).
    character_features: bool = False
    #: Trained on contiguous windows of one token stream (nothing is padded), not on examples;
    #: its models are causal, so padding after a token cannot change them.
    stream: bool = False

    #: Answers token lists as well as raw texts (`OnnxPredictor`: tokens already split, e.g. from
    #: a CoNLL file, are answered one tag each instead of being split again).
    takes_token_lists: bool = False

    #: Answers a text with a decoded target sequence (encoder-decoders: `keras-seq generate --text`).
    transduces: bool = False

    @property
    def generates(self) -> bool:
        """Whether deployed models also continue texts (a ``generate`` signature)."""
        return "generate" in self.text_signatures

    # -- reading -------------------------------------------------------------------
    def read_file(self, corpus, path, split: str) -> Iterator[Example]:
        """Examples of `split` from a local source (file or folder)."""
        raise NotImplementedError

    def from_tfds(self, items: Iterator) -> Iterator[Example]:
        """Examples from a TFDS split's items."""
        return items

    def label_items(self, example: Example) -> list[str]:
        """The label strings of one example (for the label vocabulary)."""
        return []

    def sample_texts(self, corpus, n: int) -> list[str]:
        """About `n` raw texts of held-out data, spread over the split (parity checks, benchmarks)."""
        examples = list(corpus.examples("test"))
        picked = examples[:: max(1, len(examples) // n)][:n]
        return [self.text_of(example) for example in picked]

    def text_of(self, example: Example) -> str:
        """An example's input as the raw text a deployed model receives."""
        return example[0]

    # -- tf.data --------------------------------------------------------------------
    def example_signature(self):
        """The tf.TensorSpec (structure) of one raw example."""
        raise NotImplementedError

    def token_batches(self, raw, spec):
        """Raw examples -> ragged token batches through the TF tokenizer (vocabulary counting)."""
        raise NotImplementedError

    def encode(self, raw, encoder, labels):
        """Raw examples -> unbatched id elements, as `keras_seq.pipelines.encoded_dataset` documents."""
        raise NotImplementedError

    def label_vocabulary(self, counts):
        """The label vocabulary from the training split's label counts (None: no labels)."""
        return None

    # -- model ----------------------------------------------------------------------
    def build_model(self, config: dict, vocab_size: int, num_labels: int, embedding_matrix=None,
                    char_vocab_size: int | None = None, training: bool = True):
        raise NotImplementedError

    def loss(self, model, label_smoothing: float = 0.0):
        """The training loss (``train.label_smoothing`` > 0: targets smoothed towards uniform)."""
        return cross_entropy(label_smoothing, from_logits=False)

    def loss_unit(self, config: dict) -> str:
        """What the loss averages over: "rows" (one loss per example) or "tokens" (per valid
        target token); training on several replicas weighs each replica's loss by its share."""
        return "rows"

    def metrics(self) -> list | None:
        return None

    def fit_data(self, setup):
        """(training batches, validation batches or None, callbacks, label vocabulary or None) for `fit`;
        `setup` is `keras_seq.pipelines.train.TrainingSetup`."""
        from keras_seq.pipelines.train import labeled_fit_data

        return labeled_fit_data(self, setup)

    def validation_callbacks(self, validation, label_vocab, monitor: str) -> list:
        """Callbacks that log the validation quantity `monitor` when Keras' own metrics do not."""
        return []

    def deployable(self, model, config: dict):
        """The model as saved in the run directory (language models: a stateless twin)."""
        return model

    def evaluate(self, context) -> dict:
        """Metrics over one split; `context` is `keras_seq.pipelines.evaluate.EvaluationContext`."""
        raise NotImplementedError

    def keras_answers(self, run, encoder, tokens, ids, lengths, predict, raw_scores=None) -> list[dict]:
        """Answers straight from the Keras model (the parity reference): `tokens` ragged, `ids` padded."""
        raise NotImplementedError

    # -- export ---------------------------------------------------------------------
    def kind(self, model) -> str:
        """What the graph's output means (classify | tag | crf | lm)."""
        return self.name

    def onnx_output(self, kind: str) -> str:
        """The ONNX graph's output name."""
        raise NotImplementedError

    def onnx_output_axes(self) -> list[str]:
        return ["batch", "time", "classes"]

    def onnx_info(self, run) -> dict:
        """What the ONNX-side answers need beyond the graphs, for ``onnx/model.json``."""
        return {}

    def onnx_models(self, model, metadata: dict) -> dict:
        """ONNX file name -> graph, for ``EXPORT_DIR/onnx/`` (one graph unless the task needs more)."""
        from keras_seq.contracts.export_dir import ONNX_MODEL_FILE
        from keras_seq.export.onnx_export import task_model_to_onnx

        return {ONNX_MODEL_FILE: task_model_to_onnx(model, self, metadata)}

    def serving_signatures(self, functions) -> dict:
        """name -> (function, input signature) on `keras_seq.export.savedmodel.ServingFunctions`."""
        raise NotImplementedError

    def probe_inputs(self, model, rng) -> list:
        """Model inputs after the token ids that the padding probe feeds unchanged."""
        return []

    def padding_probe(self, plain, padded, ids):
        """The comparable parts of a model's outputs without and with extra padding."""
        return plain, padded

    # -- answers --------------------------------------------------------------------
    def answer_from_outputs(self, row: dict, labels: list[str] | None) -> dict:
        """One row of the ``serving_default`` signature's outputs -> the answer."""
        raise NotImplementedError

    def outputs_from_answer(self, answer: dict, labels: list[str] | None) -> dict:
        """The inverse, for the local server's V1 replies."""
        raise NotImplementedError

    def onnx_answers(self, predictor, texts: list) -> list[dict]:
        """Answers from `keras_seq.serving.OnnxPredictor`'s session for one chunk of texts."""
        raise NotImplementedError

    def answer_numbers(self, answer: dict) -> list[float]:
        """The numbers parity checks compare within a tolerance."""
        return []

    def __repr__(self) -> str:
        return f"<task {self.name}>"


def cross_entropy(label_smoothing: float = 0.0, *, from_logits: bool):
    """Sparse cross-entropy, label-smoothed when `label_smoothing` > 0 (Keras' sparse loss has no
    smoothing: `keras_seq.LabelSmoothedCrossentropy`)."""
    import keras

    if label_smoothing:
        from keras_seq.losses import LabelSmoothedCrossentropy

        return LabelSmoothedCrossentropy(label_smoothing, from_logits=from_logits)
    return keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits)
