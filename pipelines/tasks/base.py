"""`TaskPipeline`: what the pipelines do differently per task -- read a source's examples,
turn them into tf.data elements, fit, and score -- and its registry, `PIPELINE_PARTS`.

Import-time this module needs only the core; TensorFlow loads when a method runs, so
config validation and the CLI's cheap checks stay fast.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from keras_seq.tasks.registry import TaskPart, TaskParts

#: Per example, what readers yield: classify (text, label), tag (tokens, tags), lm one text per split.
Example = Any


class TaskPipeline(TaskPart):
    """The pipelines' part of a task; one subclass per task, registered with ``@PIPELINE_PARTS.register``."""

    #: Validation quantities `train.monitor` may name.
    monitors: tuple[str, ...] = ("val_loss",)
    #: The split `train` reports as its held-out result.
    report_split: str = "test"
    #: A source of this task always has its own validation split (no holding out).
    own_validation: bool = False

    def has_own_validation(self, path) -> bool:
        """Whether the local source at `path` brings its own validation data (else `Corpus` holds every
        holdout_every-th training example out)."""
        return self.own_validation

    #: Answers a text with a decoded target sequence (encoder-decoders: `keras-seq generate --text`).
    transduces: bool = False

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

    def check_config(self, config: dict) -> None:
        """Refuses, with one line naming the key, settings this task cannot train with."""

    # -- fitting and scoring ----------------------------------------------------------
    def fit_data(self, setup):
        """(training batches, validation batches or None, callbacks, label vocabulary or None) for `fit`;
        `setup` is `keras_seq.pipelines.fit_data.TrainingSetup`."""
        from keras_seq.pipelines.fit_data import labeled_fit_data

        return labeled_fit_data(self, setup)

    def start_weights(self, model, fit, config: dict) -> None:
        """Sets starting weights that the training data decides (`fit`: what `fit_data` returned)."""

    def validation_callbacks(self, validation, label_vocab, monitor: str) -> list:
        """Callbacks that log the validation quantity `monitor` when Keras' own metrics do not."""
        return []

    def evaluate(self, context) -> dict:
        """Metrics over one split; `context` is `keras_seq.pipelines.evaluate.EvaluationContext`."""
        raise NotImplementedError


PIPELINE_PARTS: TaskParts[TaskPipeline] = TaskParts("pipelines")


def pipeline_for(task) -> TaskPipeline:
    """The pipelines' part of `task` (a name or a core `Task`)."""
    return PIPELINE_PARTS.get(task)
