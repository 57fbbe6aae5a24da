"""The PyTorch twin of an exported keras-seq classifier, exported with `torch.onnx.export`.

Runs in a PyTorch environment (torch and numpy only; the package is not imported):

    TORCH_PYTHON benchmarks/torch_twin.py WEIGHTS.npz OUT.onnx

WEIGHTS.npz (written by `benchmarks.bench_torch_onnx`) holds the export's weights in ONNX's
layouts: ``embedding`` (V, E), per layer ``W``, ``R``, ``B`` of the ONNX GRU / LSTM operator
(gates z, r, h / i, o, f, c), ``kernel`` / ``bias`` of the output layer, and ``cell`` /
``pooling`` as strings. The twin is what a PyTorch user writes: ``nn.Embedding`` → a
bidirectional ``nn.GRU`` / ``nn.LSTM`` over ``pack_padded_sequence`` (so padding never enters
the recurrence, as in the export) → masked max or mean pooling → ``nn.Linear`` → softmax. Its
input is ids (N, L), 0 = padding. It is exported with the default exporter and, should that
refuse the packed sequence, with the TorchScript one (``dynamo=False``); the file's sidecar
``OUT.onnx.json`` says which, with torch's version.
"""

from __future__ import annotations

import json
import sys

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

# ONNX gate blocks -> PyTorch's: GRU z,r,h -> r,z,n; LSTM i,o,f,c -> i,f,g,o
GATE_ORDER = {"gru": [1, 0, 2], "lstm": [0, 2, 3, 1]}


def _torch_gates(matrix: np.ndarray, cell: str) -> torch.Tensor:
    blocks = np.split(matrix, len(GATE_ORDER[cell]), axis=0)
    return torch.from_numpy(np.concatenate([blocks[i] for i in GATE_ORDER[cell]], axis=0).copy())


class Classifier(nn.Module):
    def __init__(self, weights: dict) -> None:
        super().__init__()
        self.cell, self.pooling = str(weights["cell"]), str(weights["pooling"])
        embedding = torch.from_numpy(weights["embedding"])
        self.embedding = nn.Embedding.from_pretrained(embedding, freeze=True, padding_idx=0)
        layers = sorted({k.split("/")[0] for k in weights if k.startswith("layer")})
        rnn = {"gru": nn.GRU, "lstm": nn.LSTM}[self.cell]
        hidden = weights[f"{layers[0]}/R"].shape[-1]
        self.rnn = rnn(embedding.shape[1], hidden, num_layers=len(layers), batch_first=True, bidirectional=True)
        with torch.no_grad():
            for index, layer in enumerate(layers):
                W, R, B = (weights[f"{layer}/{k}"] for k in ("W", "R", "B"))
                for direction, suffix in enumerate(("", "_reverse")):
                    name = f"l{index}{suffix}"
                    getattr(self.rnn, f"weight_ih_{name}").copy_(_torch_gates(W[direction], self.cell))
                    getattr(self.rnn, f"weight_hh_{name}").copy_(_torch_gates(R[direction], self.cell))
                    wb, rb = np.split(B[direction], 2)
                    getattr(self.rnn, f"bias_ih_{name}").copy_(_torch_gates(wb, self.cell))
                    getattr(self.rnn, f"bias_hh_{name}").copy_(_torch_gates(rb, self.cell))
        kernel = torch.from_numpy(weights["kernel"])
        self.out = nn.Linear(kernel.shape[0], kernel.shape[1])
        with torch.no_grad():
            self.out.weight.copy_(kernel.T)
            self.out.bias.copy_(torch.from_numpy(weights["bias"]))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        lengths = (ids != 0).sum(dim=1)
        packed = pack_padded_sequence(self.embedding(ids), lengths.clamp(min=1), batch_first=True, enforce_sorted=False)
        outputs, _ = self.rnn(packed)
        outputs, _ = pad_packed_sequence(outputs, batch_first=True, total_length=ids.shape[1])
        valid = (torch.arange(ids.shape[1])[None, :] < lengths[:, None]).unsqueeze(-1)
        if self.pooling == "max":
            pooled = outputs.masked_fill(~valid, torch.finfo(outputs.dtype).min).amax(dim=1)
        else:
            pooled = (outputs * valid).sum(dim=1) / lengths.clamp(min=1)[:, None]
        pooled = pooled * (lengths > 0)[:, None]  # an empty text pools to zeros, as the export does
        return torch.softmax(self.out(pooled), dim=-1)


def main() -> None:
    weights_file, out = sys.argv[1], sys.argv[2]
    weights = dict(np.load(weights_file))
    model = Classifier(weights).eval()
    example = torch.tensor([[5, 6, 7, 0], [8, 9, 0, 0]], dtype=torch.int64)
    exporter, problems = None, []
    for dynamo in (True, False):
        try:
            torch.onnx.export(
                model,
                (example,),
                out,
                input_names=["ids"],
                output_names=["probabilities"],
                dynamic_axes=None if dynamo else {"ids": {0: "batch", 1: "steps"}},
                dynamic_shapes=({0: torch.export.Dim("batch"), 1: torch.export.Dim("steps")},) if dynamo else None,
                dynamo=dynamo,
            )
            exporter = "torch.onnx.export(dynamo=True)" if dynamo else "torch.onnx.export(dynamo=False)"
            break
        except Exception as error:  # noqa: BLE001 - recorded; the other exporter is tried
            problems.append(f"dynamo={dynamo}: {type(error).__name__}: {str(error).splitlines()[0][:300]}")
    if exporter is None:
        raise SystemExit("torch.onnx.export failed with both exporters: " + " | ".join(problems))
    with torch.no_grad():
        reference = model(torch.from_numpy(np.load(weights_file)["probe_ids"])).numpy()
    with open(out + ".json", "w") as f:
        json.dump(
            {"exporter": exporter, "torch": torch.__version__, "refused": problems, "probe": reference.tolist()}, f
        )
    print(exporter)


if __name__ == "__main__":
    main()
