"""`Task`: a task's identity and model, the part every room shares.

The core keeps only what is the task itself: its name, its label file, the flags the rooms
read, the model builder and the loss. What a room does per task lives in that room's own
registry (`keras_seq.tasks.registry.TaskParts`): reading, encoding, fitting and scoring in
`keras_seq.pipelines.tasks`; signatures and ONNX graphs in `keras_seq.export.tasks`; answers
in `keras_seq.serving.tasks`. This module imports nothing of the rooms, not even inside a
function: keras loads when a model is built.
"""

from __future__ import annotations


class Task:
    """The interface; `keras_seq.tasks.classify` / `tag` / `lm` / `seq2seq` implement it."""

    name: str = ""
    #: The label file in run and export directories (contracts.run_dir), or None.
    label_file: str | None = None
    #: Default tokenizer level.
    level: str = "word"
    #: Models can also read each word's characters (`data.char_features`).
    character_features: bool = False
    #: Trained on contiguous windows of one token stream (nothing is padded), not on examples;
    #: its models are causal, so padding after a token cannot change them.
    stream: bool = False
    #: Deployed models also continue texts (a ``generate`` signature).
    generates: bool = False

    def build_model(
        self,
        config: dict,
        vocab_size: int,
        num_labels: int,
        embedding_matrix=None,
        char_vocab_size: int | None = None,
        training: bool = True,
    ):
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

    def deployable(self, model, config: dict):
        """The model as saved in the run directory (language models: a stateless twin)."""
        return model

    def not_deployable(self, config: dict) -> str | None:
        """Why a run trained with `config` must not be exported or served (None: it may be)."""
        return None

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
