"""Every config key, defined once: its type, default, meaning and the tasks that read it.

`keras_seq.pipelines.config` builds its defaults and checks from `KEYS`; ``keras-seq config init``
writes its comments from them; the documentation's configuration reference is generated from them.

>>> key = KEYS["train.learning_rate"]
>>> key.default, key.type_name
(0.001, 'float')
>>> KEYS["data.tag_column"].tasks
('tag',)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from keras_seq.tasks.seq2seq import DECODE_DEFAULTS

#: The environment variable that names the folder of the shared data sets; a ``data.source`` that
#: starts with ``${KERAS_SEQ_DATA}`` is read under it (the shipped configs' sources do).
DATA_VARIABLE = "KERAS_SEQ_DATA"


@dataclass(frozen=True)
class ConfigKey:
    name: str  # dotted: "data.max_len"
    default: Any
    type: type | tuple[type, ...]
    help: str
    tasks: tuple[str, ...] = ()  # the tasks that read it; () = every task
    choices: tuple | None = None
    optional: bool = False  # None (left out of the file) is allowed

    @property
    def table(self) -> str:
        return self.name.split(".")[0] if "." in self.name else ""

    @property
    def key(self) -> str:
        return self.name.split(".", 1)[-1]

    @property
    def type_name(self) -> str:
        types = self.type if isinstance(self.type, tuple) else (self.type,)
        names = " | ".join({bool: "bool", int: "int", float: "float", str: "string", list: "list"}[t] for t in types)
        return f"{names} (optional)" if self.optional else names

    def check(self, value: Any) -> None:
        """A one-line ValueError naming the key when `value` is not of its type or choices."""
        if value is None:
            if self.optional:
                return
            raise ValueError(f"config key '{self.name}' needs a value ({self.type_name})")
        types = self.type if isinstance(self.type, tuple) else (self.type,)
        accepted = isinstance(value, types) and not (isinstance(value, bool) and bool not in types)
        if not accepted and float in types and isinstance(value, int) and not isinstance(value, bool):
            accepted = True  # 1 is a fine float
        if not accepted:
            raise ValueError(f"config key '{self.name}' must be {self.type_name}; received {value!r}")
        if self.choices is not None and value not in self.choices:
            raise ValueError(
                f"config key '{self.name}' must be one of {', '.join(map(repr, self.choices))}; received {value!r}"
            )

    def applies_to(self, task: str) -> bool:
        return not self.tasks or task in self.tasks


_C, _T, _L, _S = ("classify",), ("tag",), ("lm",), ("seq2seq",)

_KEYS = [
    ConfigKey("task", "classify", str, "What the model learns: classify | tag | lm | seq2seq (keras_seq.tasks)."),
    # -- [data] ------------------------------------------------------------------------------------------
    ConfigKey(
        "data.source",
        "",
        str,
        "The data: a file, a folder of train / dev / test files, an archive, tfds:NAME, or cmudict. "
        "A leading ${KERAS_SEQ_DATA} reads under the folder that environment variable names.",
    ),
    ConfigKey("data.level", "word", str, "Tokens are words or characters.", choices=("word", "char")),
    ConfigKey("data.lower", True, bool, "Lower-case ASCII letters before lookup."),
    ConfigKey("data.max_len", None, int, "Most tokens per text; longer texts are cut (none: no limit).", optional=True),
    ConfigKey(
        "data.truncate",
        "tail",
        str,
        "Keep the first (tail) or the last (head) max_len tokens.",
        choices=("tail", "head"),
    ),
    ConfigKey("data.vocab_size", 20000, int, "Most tokens in the vocabulary (the most frequent)."),
    ConfigKey("data.min_count", 1, int, "A token needs this many training occurrences to enter the vocabulary."),
    ConfigKey("data.text_column", "text", str, "The text column of a CSV / TSV / JSONL file.", _C),
    ConfigKey("data.label_column", "label", str, "The label column of a CSV / TSV / JSONL file.", _C),
    ConfigKey("data.tag_column", "upos", str, "The CoNLL-U column the tagger learns (upos, xpos, deprel ...).", _T),
    ConfigKey("data.source_column", "source", str, "The input text column of a seq2seq table.", _S),
    ConfigKey("data.target_column", "target", str, "The whitespace-separated target tokens of a seq2seq table.", _S),
    ConfigKey("data.strip_stress", False, bool, "CMUdict: drop the phones' stress digits (AH0 -> AH).", _S),
    ConfigKey("data.train_fraction", 0.9, float, "One text file: the first fraction of its characters trains.", _L),
    ConfigKey(
        "data.holdout_every", 10, int, "A source without a validation split: every N-th training example validates."
    ),
    ConfigKey(
        "data.split_fractions",
        [0.8, 0.1, 0.1],
        list,
        "One file: train / validation / test shares, each example placed by a seeded hash of its text.",
    ),
    ConfigKey("data.split_seed", 0, int, "The seed of that hash."),
    ConfigKey("data.char_features", False, bool, "Also feed each word's characters (a character-level encoder).", _T),
    ConfigKey("data.max_word_len", 20, int, "Most characters per word for char_features.", _T),
    ConfigKey("data.lower_words", False, bool, "Word level: look words up lower-cased (characters keep the case)."),
    ConfigKey("data.zero_digits", False, bool, "Word level: look words up with every digit as 0."),
    ConfigKey("data.limit", None, int, "Use only the first N examples of each split (quick runs).", optional=True),
    # -- [model] -----------------------------------------------------------------------------------------
    ConfigKey("model.cell", "lstm", str, "The recurrent cell.", choices=("elman", "gru", "lstm")),
    ConfigKey("model.embed_dim", 128, int, "Width of the token embedding."),
    ConfigKey("model.units", 128, int, "Units of each recurrent layer (per direction)."),
    ConfigKey("model.depth", 1, int, "Stacked recurrent layers (the encoder's, for seq2seq)."),
    ConfigKey(
        "model.bidirectional", True, bool, "Read each text both ways (not for lm).", ("classify", "tag", "seq2seq")
    ),
    ConfigKey("model.dropout", 0.0, float, "Dropout on each layer's inputs (variational: one mask per sequence)."),
    ConfigKey("model.recurrent_dropout", 0.0, float, "Dropout on the recurrent connections (variational)."),
    ConfigKey(
        "model.pooling",
        "last",
        str,
        "How a text becomes one vector (concat: last, max and mean side by side, as ULMFiT).",
        _C,
        ("last", "mean", "max", "concat", "final"),
    ),
    ConfigKey(
        "model.init_from",
        None,
        (str, list),
        "Run directories of pretrained language models (task lm) whose embedding and recurrent layers "
        "start this model: a forward LM, and a backward one for a bidirectional model's other half "
        "([]: none).",
        ("classify", "tag"),
        optional=True,
    ),
    ConfigKey(
        "model.direction",
        "forward",
        str,
        "Which way the language model reads its text; a backward LM pretrains a bidirectional model's "
        "backward half (model.init_from) and is not exported.",
        _L,
        ("forward", "backward"),
    ),
    ConfigKey("model.crf", False, bool, "A CRF output layer (Viterbi decoding) instead of a softmax.", _T),
    ConfigKey(
        "model.vectors",
        None,
        str,
        "Pretrained word vectors for the embedding: GloVe / word2vec text or binary, fastText .vec (.gz too).",
        optional=True,
    ),
    ConfigKey(
        "model.vectors_fit",
        "error",
        str,
        "When the vectors' size is not model.embed_dim: refuse, or keep their leading principal components.",
        choices=("error", "pca"),
    ),
    ConfigKey("model.char_embed_dim", 32, int, "Width of the character embedding (char_features).", _T),
    ConfigKey("model.char_units", 32, int, "Units of the character encoder (char_features).", _T),
    ConfigKey(
        "model.char_lm_units",
        0,
        int,
        "Contextual character features (Flair): units of the forward and backward character LMs whose "
        "states at each word's ends join its features (char_features; pretrained LMs in model.init_from). "
        "0: none.",
        _T,
    ),
    ConfigKey("model.char_lm_embed_dim", 32, int, "Width of the character LMs' embeddings.", _T),
    ConfigKey("model.char_lm_cell", "lstm", str, "The character LMs' cell.", _T, ("elman", "gru", "lstm")),
    ConfigKey(
        "model.char_lm_trainable",
        False,
        bool,
        "Train the character LMs with the tagger (false: they stay as pretrained, as in Flair).",
        _T,
    ),
    ConfigKey(
        "model.attention",
        "luong",
        str,
        "The decoder's attention (none: the plain encoder-decoder).",
        _S,
        ("luong", "luong_dot", "bahdanau", "none"),
    ),
    ConfigKey(
        "model.input_feeding",
        True,
        bool,
        "The decoder's cell reads the previous attentional vector with each target token (Luong's input "
        "feeding); false: it reads the token alone and teacher forcing runs the attention after the loop.",
        _S,
    ),
    # -- [train] -----------------------------------------------------------------------------------------
    ConfigKey("train.epochs", 10, int, "Most epochs."),
    ConfigKey("train.optimizer", "adam", str, "The optimizer.", choices=("adam", "sgd", "rmsprop", "adamw")),
    ConfigKey("train.learning_rate", 1e-3, float, "The learning rate."),
    ConfigKey("train.clipnorm", 1.0, float, "Clip the gradient's global norm to this."),
    ConfigKey(
        "train.weight_decay",
        None,
        float,
        "Decoupled weight decay (each step shrinks a variable by learning_rate * weight_decay); none: the "
        "optimizer's own default (adamw 0.004, the others none).",
        optional=True,
    ),
    ConfigKey(
        "train.ema_momentum",
        None,
        float,
        "Validate, keep and export an exponential moving average of the weights over the train steps "
        "(Polyak averaging; 0.999: about the last 1,000 steps); none: the latest weights.",
        optional=True,
    ),
    ConfigKey(
        "train.label_smoothing",
        0.0,
        float,
        "Smooth softmax targets towards uniform by this much (not with a CRF).",
        ("classify", "tag", "lm", "seq2seq"),
    ),
    ConfigKey("train.patience", 3, int, "Early stopping: epochs without a better monitor."),
    ConfigKey(
        "train.monitor",
        "val_loss",
        str,
        "What picks the kept epoch: val_loss, val_accuracy, or val_f1 (BIO tags).",
        choices=("val_loss", "val_accuracy", "val_f1"),
    ),
    ConfigKey(
        "train.lr_decay",
        None,
        float,
        "Multiply the learning rate by this after lr_patience epochs without a better monitor (1: off).",
        optional=True,
    ),
    ConfigKey("train.lr_patience", 1, int, "Epochs without a better monitor before lr_decay."),
    ConfigKey(
        "train.lr_schedule",
        None,
        str,
        "budget: the rate falls linearly over max_minutes and the run stops within half an epoch of it; "
        "slanted_triangular: ULMFiT's short rise to learning_rate and long linear fall over every epoch.",
        choices=("budget", "slanted_triangular"),
        optional=True,
    ),
    ConfigKey("train.stlr_cut_fraction", 0.1, float, "slanted_triangular: the share of steps that rise."),
    ConfigKey("train.stlr_ratio", 32.0, float, "slanted_triangular: how much smaller the lowest rate is."),
    ConfigKey(
        "train.discriminative_decay",
        None,
        float,
        "Divide the learning rate by this per layer group below the top (ULMFiT: 2.6); none: one rate.",
        optional=True,
    ),
    ConfigKey(
        "train.gradual_unfreezing",
        0,
        int,
        "Train the top layer group first and unfreeze one more group every this many epochs (0: off).",
    ),
    ConfigKey("train.tokens_per_batch", 4096, int, "Most padded tokens per batch."),
    ConfigKey("train.max_batch", 64, int, "Most rows per batch."),
    ConfigKey(
        "train.batching",
        "sorted",
        str,
        "sorted: length-sorted batches under the token budget; buckets: tf.data's length buckets.",
        choices=("sorted", "buckets"),
    ),
    ConfigKey("train.buckets", 12, int, "Length buckets for batching = buckets."),
    ConfigKey("train.seed", 0, int, "The seed of weights, shuffling and dropout."),
    ConfigKey("train.jit_compile", False, bool, "Compile the training step with XLA."),
    ConfigKey(
        "train.mixed_precision",
        "auto",
        str,
        "Keras mixed precision: mixed_bfloat16, mixed_float16, float32, or auto (bf16 where the hardware "
        "has bf16 instructions and, on a CPU, the recurrent layers have 256 units or more).",
        choices=("auto", "float32", "mixed_bfloat16", "mixed_float16"),
        optional=True,
    ),
    ConfigKey("train.lm_batch", 32, int, "Parallel tracks of the text stream.", _L),
    ConfigKey("train.lm_window", 100, int, "Truncated-BPTT window.", _L),
    ConfigKey(
        "train.word_dropout",
        0.0,
        float,
        "Replace training word ids by <UNK> with this probability.",
        ("classify", "tag"),
    ),
    ConfigKey(
        "train.unk_singletons",
        0.0,
        float,
        "... and words seen once in training with this one (Lample et al. 2016: 0.5).",
        ("classify", "tag"),
    ),
    ConfigKey("train.max_minutes", None, float, "Stop after this many minutes of training.", optional=True),
    ConfigKey(
        "train.strategy",
        "default",
        str,
        "Where training runs: this process, this machine's GPUs (mirrored), or the cluster TF_CONFIG names.",
        choices=("default", "mirrored", "multi_worker"),
    ),
    ConfigKey("train.data_service", "", str, "grpc://HOST:PORT: batches made by a tf.data service's workers."),
    ConfigKey("train.data_service_shards", 8, int, "Shards of the training split for the data service."),
    ConfigKey("train.data_service_timeout", 30, float, "Seconds the dispatcher has to answer."),
    # -- [decode] ---------------------------------------------------------------------------------------
    ConfigKey("decode.beam", DECODE_DEFAULTS["beam"], int, "Beam width (1: greedy).", _S),
    ConfigKey(
        "decode.alpha",
        DECODE_DEFAULTS["alpha"],
        float,
        "Length normalisation: score = log p / (tokens + EOS)**alpha.",
        _S,
    ),
    ConfigKey(
        "decode.max_length_factor",
        DECODE_DEFAULTS["max_length_factor"],
        float,
        "At most floor(factor * source tokens) + extra target tokens.",
        _S,
    ),
    ConfigKey("decode.max_length_extra", DECODE_DEFAULTS["max_length_extra"], int, "... plus this many.", _S),
    ConfigKey(
        "decode.merge_stress",
        DECODE_DEFAULTS["merge_stress"],
        bool,
        "Rank by the stress-free phones, stress variants summed.",
        _S,
    ),
]

KEYS: dict[str, ConfigKey] = {key.name: key for key in _KEYS}
TABLES = ("data", "model", "train", "decode")


def defaults() -> dict:
    """The nested defaults: ``{"task": ..., "data": {...}, ...}`` (a fresh copy)."""
    import copy

    out: dict = {table: {} for table in TABLES}
    for key in _KEYS:
        if key.table:
            out[key.table][key.key] = copy.deepcopy(key.default)
        else:
            out[key.name] = key.default
    return out
