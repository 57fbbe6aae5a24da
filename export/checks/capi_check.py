"""Loads a SavedModel through TensorFlow's C API -- ``TF_LoadSessionFromSavedModel``
in the ``libtensorflow_cc`` shared library the tensorflow wheel ships, the
loader TF Serving's C++ code uses -- and runs one text signature with
``TF_SessionRun``. Only ctypes and NumPy: the TensorFlow Python package is
never imported (its folder is only located, to find the libraries).

    python capi_check.py SAVEDMODEL_DIR SIGNATURE.json TEXTS.json OUT.npz

SIGNATURE.json: {"inputs": {"text": "name:0"}, "outputs": {key: "name:0"}}
(the signature's tensor names, from the TF1 loader in `fresh_check.py`).
"""

import ctypes
import importlib.util
import json
import os
import sys

import numpy as np

TF_FLOAT, TF_INT32, TF_STRING, TF_INT64, TF_BOOL = 1, 3, 7, 9, 10
TSTRING_SIZE = 24  # sizeof(TF_TString)
_NUMPY = {TF_FLOAT: np.float32, TF_INT32: np.int32, TF_INT64: np.int64, TF_BOOL: np.bool_}


class TF_Output(ctypes.Structure):
    _fields_ = [("oper", ctypes.c_void_p), ("index", ctypes.c_int)]


def _libraries():
    spec = importlib.util.find_spec("tensorflow")  # locates the package without importing it
    folder = list(spec.submodule_search_locations)[0]
    framework = ctypes.CDLL(os.path.join(folder, "libtensorflow_framework.so.2"), mode=ctypes.RTLD_GLOBAL)
    cc = ctypes.CDLL(os.path.join(folder, "libtensorflow_cc.so.2"), mode=ctypes.RTLD_GLOBAL)
    vp, i64 = ctypes.c_void_p, ctypes.c_int64
    for lib, name, res, args in [
        (framework, "TF_NewStatus", vp, []),
        (framework, "TF_GetCode", ctypes.c_int, [vp]),
        (framework, "TF_Message", ctypes.c_char_p, [vp]),
        (framework, "TF_AllocateTensor", vp, [ctypes.c_int, ctypes.POINTER(i64), ctypes.c_int, ctypes.c_size_t]),
        (framework, "TF_TensorData", vp, [vp]),
        (framework, "TF_TensorType", ctypes.c_int, [vp]),
        (framework, "TF_NumDims", ctypes.c_int, [vp]),
        (framework, "TF_Dim", i64, [vp, ctypes.c_int]),
        (cc, "TF_NewGraph", vp, []),
        (cc, "TF_NewSessionOptions", vp, []),
        (
            cc,
            "TF_LoadSessionFromSavedModel",
            vp,
            [vp, vp, ctypes.c_char_p, ctypes.POINTER(ctypes.c_char_p), ctypes.c_int, vp, vp, vp],
        ),
        (cc, "TF_GraphOperationByName", vp, [vp, ctypes.c_char_p]),
        (
            cc,
            "TF_SessionRun",
            None,
            [
                vp,
                vp,
                ctypes.POINTER(TF_Output),
                ctypes.POINTER(vp),
                ctypes.c_int,
                ctypes.POINTER(TF_Output),
                ctypes.POINTER(vp),
                ctypes.c_int,
                vp,
                ctypes.c_int,
                vp,
                vp,
            ],
        ),
        (cc, "TF_StringInit", None, [vp]),
        (cc, "TF_StringCopy", None, [vp, ctypes.c_char_p, ctypes.c_size_t]),
        (cc, "TF_StringGetDataPointer", vp, [vp]),
        (cc, "TF_StringGetSize", ctypes.c_size_t, [vp]),
    ]:
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = res, args
    return framework, cc


def main(directory, signature_path, texts_path, out_path):
    fw, cc = _libraries()
    with open(signature_path, encoding="utf-8") as f:
        signature = json.load(f)
    with open(texts_path, encoding="utf-8") as f:
        texts = [bytes.fromhex(i["hex"]) if "hex" in i else i["text"].encode("utf-8") for i in json.load(f)]

    status = fw.TF_NewStatus()

    def check(what):
        if fw.TF_GetCode(status) != 0:
            raise SystemExit(f"{what}: {fw.TF_Message(status).decode()}")

    graph = cc.TF_NewGraph()
    tags = (ctypes.c_char_p * 1)(b"serve")
    session = cc.TF_LoadSessionFromSavedModel(
        cc.TF_NewSessionOptions(), None, directory.encode(), tags, 1, graph, None, status
    )
    check("TF_LoadSessionFromSavedModel")

    def output(tensor_name):
        op_name, index = tensor_name.rsplit(":", 1)
        op = cc.TF_GraphOperationByName(graph, op_name.encode())
        if not op:
            raise SystemExit(f"no operation {op_name!r} in the loaded graph")
        return TF_Output(op, int(index))

    dims = (ctypes.c_int64 * 1)(len(texts))
    text_tensor = fw.TF_AllocateTensor(TF_STRING, dims, 1, TSTRING_SIZE * len(texts))
    base = fw.TF_TensorData(text_tensor)
    for i, text in enumerate(texts):
        element = base + i * TSTRING_SIZE
        cc.TF_StringInit(element)
        cc.TF_StringCopy(element, text, len(text))

    keys = sorted(signature["outputs"])
    inputs = (TF_Output * 1)(output(signature["inputs"]["text"]))
    input_values = (ctypes.c_void_p * 1)(text_tensor)
    outputs = (TF_Output * len(keys))(*[output(signature["outputs"][k]) for k in keys])
    output_values = (ctypes.c_void_p * len(keys))()
    cc.TF_SessionRun(session, None, inputs, input_values, 1, outputs, output_values, len(keys), None, 0, None, status)
    check("TF_SessionRun")
    np.savez(out_path, **{k: _to_numpy(fw, cc, output_values[i]) for i, k in enumerate(keys)})


def _to_numpy(fw, cc, tensor):
    shape = tuple(fw.TF_Dim(tensor, d) for d in range(fw.TF_NumDims(tensor)))
    kind = fw.TF_TensorType(tensor)
    count = int(np.prod(shape)) if shape else 1
    data = fw.TF_TensorData(tensor)
    if kind == TF_STRING:
        values = []
        for i in range(count):
            element = data + i * TSTRING_SIZE
            values.append(ctypes.string_at(cc.TF_StringGetDataPointer(element), cc.TF_StringGetSize(element)))
        return np.array(values, dtype=object).reshape(shape)
    dtype = np.dtype(_NUMPY[kind])
    buffer = ctypes.string_at(data, count * dtype.itemsize)
    return np.frombuffer(buffer, dtype=dtype).reshape(shape).copy()


if __name__ == "__main__":
    main(*sys.argv[1:5])
