"""The text-in graph: the tokenizer inside the ONNX graph, for bindings without the twin (C#, Java,
C++): a string tensor of raw texts goes in, the model's outputs come out.

The tokenizer's rules (`keras_seq.pipelines.tokenize`) become onnxruntime-extensions' string operators
(domain ``ai.onnx.contrib``; they use RE2, as TensorFlow's ``regex_replace`` does) and standard ones:

* rule 2, ASCII lower-casing: one ``StringRegexReplace`` per letter (the extensions' ``StringLower``
  lower-cases every script, the rule only A-Z);
* rule 3: ``StringRegexReplace`` with the contract's three patterns, then ``StringSplit`` on " ";
* rules 4 and 7: the vocabulary as ``ai.onnx.ml.LabelEncoder`` (string -> int64, <UNK> by default),
  word keys made on a copy of the tokens;
* rule 5: the kept tokens' positions computed with standard operators (``Compress``, ``ScatterND``)
  into right-padded ids (batch, max(1, longest kept));
* the answer: classifiers also output ``label`` (the likeliest label's name), taggers ``tokens``,
  ``tags`` (argmax) and ``lengths``.

Not expressed: character-level tokenizers and taggers with character features (rule 6: code points
of each word), CRF Viterbi and the decoding of language models and encoder-decoders (those exports
have no text-in graph: `text_graph_supported` says why); rule 5's window, which only bounds the
work and never changes the tokens. Inputs are UTF-8 strings, so rule 1 (invalid bytes, lone
surrogates -> U+FFFD) is the caller's: ONNX Runtime's bindings refuse strings that are not valid UTF-8.
A text holding U+0000 is cut there by ONNX Runtime's string tensors (measured: no IMDB review and no
EWT sentence holds one).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, compose, helper

from keras_seq.contracts import read_labels
from keras_seq.contracts.export_dir import ONNX_MODEL_FILE, TEXT_GRAPH_FILE
from keras_seq.contracts.tokenizer import BR_PATTERN, PAD, PAD_ID, PUNCT_PATTERN, SPACE_PATTERN, UNK_ID, TokenizerSpec
from keras_seq.contracts.vocab import Vocabulary
from keras_seq.export.onnx.graph import OPSET
from keras_seq.export.tasks import export_for
from keras_seq.tasks import get_task

CONTRIB = "ai.onnx.contrib"  # onnxruntime-extensions' custom operators
ML = "ai.onnx.ml"
TEXT_INPUT = "text"


def text_graph_supported(spec: TokenizerSpec, task: str, kind: str) -> str | None:
    """None when the export can have a text-in graph, else why not (one line)."""
    if spec.level != "word":
        return "character-level tokenizers are not expressed (rule 4 at code points)"
    if spec.char_vocab_file:
        return "taggers with character features are not expressed (rule 6: each word's code points)"
    if not export_for(task).text_graph_decodes(kind):
        return f"the {kind} answer needs decoding outside the graph (Viterbi, generation or beam search)"
    return None


class _Builder:
    def __init__(self) -> None:
        self.nodes: list = []
        self.initializers: list = []
        self._count = 0

    def name(self, stem: str) -> str:
        self._count += 1
        return f"text_{stem}_{self._count}"

    def const(self, value, dtype=None) -> str:
        name = self.name("const")
        if isinstance(value, (bytes, str)):
            data = value.encode("utf-8") if isinstance(value, str) else value
            self.initializers.append(helper.make_tensor(name, TensorProto.STRING, [1], [data]))
        else:
            array = np.asarray(value, dtype=dtype or np.int64)
            self.initializers.append(onnx.numpy_helper.from_array(array, name))
        return name

    def op(self, op_type: str, inputs: list[str], outputs: int | list[str] = 1, domain: str = "", **attrs):
        names = [self.name(op_type.lower()) for _ in range(outputs)] if isinstance(outputs, int) else outputs
        self.nodes.append(helper.make_node(op_type, inputs, names, domain=domain, **attrs))
        return names[0] if len(names) == 1 else names

    def replace(self, text: str, pattern: str, rewrite: str) -> str:
        return self.op("StringRegexReplace", [text, self.const(pattern), self.const(rewrite)], domain=CONTRIB)

    def labels_of(self, ids: str, labels: list[str]) -> str:
        """Label names of int64 ids (``LabelEncoder``)."""
        return self.op(
            "LabelEncoder",
            [ids],
            domain=ML,
            keys_int64s=list(range(len(labels))),
            values_strings=labels,
            default_string="",
        )

    def ascii_lower(self, text: str) -> str:
        for letter in "ABCDEFGHIJKLMNOPQRSTUVWXYZ":
            text = self.replace(text, letter, letter.lower())
        return text


def tokenizer_graph(spec: TokenizerSpec, vocabulary: list[str]) -> tuple[_Builder, dict[str, str]]:
    """The nodes from ``text`` (N,) to ``ids`` (N, W) int64, ``tokens`` (N, W) and ``lengths`` (N,)."""
    b = _Builder()
    text = b.ascii_lower(TEXT_INPUT) if spec.lower else TEXT_INPUT
    text = b.replace(text, BR_PATTERN, " ")
    text = b.replace(text, PUNCT_PATTERN, r" \1 ")
    text = b.replace(text, SPACE_PATTERN, " ")
    indices, tokens, shape = b.op("StringSplit", [text, b.const(" "), b.const(np.array([True]), np.bool_)], 3, CONTRIB)
    keys = tokens
    if spec.lower_words:
        keys = b.ascii_lower(keys)
    if spec.zero_digits:
        keys = b.replace(keys, "[1-9]", "0")
    ids = b.op(
        "LabelEncoder",
        [keys],
        domain=ML,
        keys_strings=[t for t in vocabulary if t != PAD],  # a text's "<PAD>" is <UNK>
        values_int64s=[i for i, t in enumerate(vocabulary) if t != PAD],
        default_int64=UNK_ID,
    )
    # rule 5: which tokens are kept, and where they go
    rows = b.op("Squeeze", [b.op("Slice", [indices, b.const([0]), b.const([1]), b.const([1])]), b.const([1])])
    cols = b.op("Squeeze", [b.op("Slice", [indices, b.const([1]), b.const([2]), b.const([1])]), b.const([1])])
    batch = b.op("Slice", [shape, b.const([0]), b.const([1])])
    counts = b.op("ReduceSum", [b.op("OneHot", [rows, batch, b.const([0, 1])], axis=-1), b.const([0])], keepdims=0)
    if spec.max_len is None:
        kept, new_cols, lengths = None, cols, counts
    else:
        limit = b.const(spec.max_len)
        lengths = b.op("Min", [counts, limit])
        if spec.truncate == "tail":
            kept, new_cols = b.op("Less", [cols, limit]), cols
        else:
            skip = b.op("Gather", [b.op("Max", [b.op("Sub", [counts, limit]), b.const(0)]), rows])
            kept, new_cols = b.op("GreaterOrEqual", [cols, skip]), b.op("Sub", [cols, skip])
    positions = b.op(
        "Concat", [b.op("Unsqueeze", [rows, b.const([1])]), b.op("Unsqueeze", [new_cols, b.const([1])])], axis=1
    )
    values, words = ids, tokens
    if kept is not None:
        positions = b.op("Compress", [positions, kept], axis=0)
        values, words = b.op("Compress", [ids, kept], axis=0), b.op("Compress", [tokens, kept], axis=0)
    width = b.op("Max", [b.op("ReduceMax", [lengths], keepdims=1), b.const([1])])  # (1,); empty batch: 1
    dense_shape = b.op("Concat", [batch, width], axis=0)
    dense_ids = b.op(
        "ScatterND",
        [
            b.op("ConstantOfShape", [dense_shape], value=helper.make_tensor("v", TensorProto.INT64, [1], [PAD_ID])),
            positions,
            values,
        ],
    )
    empty = b.op("Expand", [b.const(""), dense_shape])
    dense_tokens = b.op("ScatterND", [empty, positions, words])
    return b, {"ids": dense_ids, "tokens": dense_tokens, "lengths": lengths}


def text_in_model(onnx_dir: str | Path, task: str, kind: str, output: str) -> onnx.ModelProto:
    """The export's ``model.onnx`` behind its tokenizer: ``text`` (N,) string in; the model's outputs,
    and the answer's fields (see the module's docstring), out."""
    onnx_dir = Path(onnx_dir)
    spec = TokenizerSpec.load(onnx_dir)
    why = text_graph_supported(spec, task, kind)
    if why:
        raise ValueError(f"{onnx_dir}: no text-in graph: {why}")
    vocabulary = Vocabulary.load(onnx_dir / spec.vocab_file, "word").tokens
    b, fields = tokenizer_graph(spec, vocabulary)
    model = onnx.load(str(onnx_dir / ONNX_MODEL_FILE))
    labels = read_labels(onnx_dir / get_task(task).label_file)
    tokenizer_nodes = len(b.nodes)
    answer = export_for(task).text_graph_fields(b, f"model_{output}", labels, fields)
    inner = compose.add_prefix(model, "model_")  # the model's graph, fed by the tokenizer's ids
    named = {"ids": fields["ids"], **answer}
    types = {"ids": TensorProto.INT64, "lengths": TensorProto.INT64}
    graph = helper.make_graph(
        [
            *b.nodes[:tokenizer_nodes],
            helper.make_node("Identity", [fields["ids"]], ["model_ids"]),
            *inner.graph.node,
            *b.nodes[tokenizer_nodes:],
            *(helper.make_node("Identity", [o.name], [o.name[len("model_") :]]) for o in inner.graph.output),
            *(helper.make_node("Identity", [tensor], [name]) for name, tensor in named.items()),
        ],
        "keras_seq_text_in",
        [helper.make_tensor_value_info(TEXT_INPUT, TensorProto.STRING, [None])],
        [
            *(
                helper.make_tensor_value_info(o.name[len("model_") :], o.type.tensor_type.elem_type, None)
                for o in inner.graph.output
            ),
            *(helper.make_tensor_value_info(name, types.get(name, TensorProto.STRING), None) for name in named),
        ],
        [*b.initializers, *inner.graph.initializer],
    )
    opsets = {o.domain: o.version for o in model.opset_import}
    opsets.update({"": max(opsets.get("", OPSET), OPSET), CONTRIB: 1, ML: 3})
    text_model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid(d, v) for d, v in opsets.items()],
        producer_name="keras-seq",
        doc_string=f"keras-seq {task} model, text in (onnxruntime-extensions)",
        ir_version=model.ir_version,
    )
    for prop in model.metadata_props:
        text_model.metadata_props.append(prop)
    return text_model


def write_text_graph(onnx_dir: str | Path, task: str, kind: str, output: str) -> dict:
    """Writes ``model_text.onnx`` beside ``model.onnx``; returns what ``model.json`` records of it."""
    model = text_in_model(onnx_dir, task, kind, output)
    onnx.save(model, str(Path(onnx_dir) / TEXT_GRAPH_FILE))
    return {
        "file": TEXT_GRAPH_FILE,
        "inputs": [TEXT_INPUT],
        "outputs": [o.name for o in model.graph.output],
        "custom_ops": "onnxruntime-extensions (ai.onnx.contrib)",
    }
