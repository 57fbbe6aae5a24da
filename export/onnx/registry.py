"""The ONNX converter's open handler registry: one decorator, one handler signature.

A handler writes the ONNX nodes of one Keras layer class (and its subclasses: the lookup
follows the class's MRO)::

    @onnx_handler(keras.layers.Dense, per_step=True)
    def dense(conv, layer, inputs, lengths):
        ...
        return output_name

- `conv` is the `keras_seq.export.onnx.converter.Converter` walking the model (its graph
  builder ``conv.g`` and mask helpers);
- `inputs` are the ONNX names of the layer's tensor inputs (a mask passed as a raw op's value
  is left out), `lengths` the row lengths of the first input's mask, or None when unmasked;
- it returns the ONNX name of the layer's output, or a list of them for several outputs.

`mask` says what mask the layer's outputs carry, as Keras propagates it: ``KEEP`` (the input's,
the default), ``DROP`` (none), or a function ``(conv, layer, lengths, inputs) -> lengths``.
`per_step` marks handlers that act on the last axis alone, so ``TimeDistributed`` may wrap them.
A module that registers handlers is imported by the converter (`HANDLER_MODULES`); a user's own
layer registers by calling the decorator before exporting.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

KEEP = "keep"
DROP = "drop"


@dataclass(frozen=True)
class Handler:
    write: Callable
    mask: str | Callable = KEEP
    per_step: bool = False

    def mask_after(self, conv, layer, lengths: str | None, inputs: list) -> str | None:
        if callable(self.mask):
            return self.mask(conv, layer, lengths, inputs)
        return lengths if self.mask == KEEP else None


HANDLERS: dict[type, Handler] = {}


def onnx_handler(*layer_classes: type, mask: str | Callable = KEEP, per_step: bool = False):
    """Registers the decorated function as the ONNX writer of `layer_classes`."""

    def register(write: Callable) -> Callable:
        for cls in layer_classes:
            HANDLERS[cls] = Handler(write, mask, per_step)
        return write

    return register


def handler_for(layer) -> Handler:
    """The handler of `layer`'s class, or of its nearest registered base class."""
    for cls in type(layer).__mro__:
        if cls in HANDLERS:
            return HANDLERS[cls]
    supported = sorted({c.__name__ for c in HANDLERS})
    raise ValueError(
        f"layer {layer.name!r} ({type(layer).__name__}) is not supported by the ONNX export; "
        f"supported: {', '.join(supported)}"
    )
