"""The file contracts, each defined once: reader (validating), writer, defaults, version.

No TensorFlow, no keras, no NumPy: every room reads its files through here --
the training pipeline, the exporters, and the TF-free serving side alike.

* `tokenizer` -- ``tokenizer.json`` (`TokenizerSpec`) and the tokenizer rules' constants;
* `vocab` -- vocabulary and label files (`Vocabulary`);
* `run_dir` -- what ``keras-seq train`` writes (`RunDirectory`);
* `export_dir` -- what ``keras-seq export`` writes, ``export.json`` and ``onnx/model.json``;
* `answers` -- one JSON answer shape per task.

Every reader raises `ContractError` (a ValueError) or FileNotFoundError with
one line that names the file and the problem.
"""

from keras_seq.contracts.export_dir import ExportDirectory
from keras_seq.contracts.files import ContractError
from keras_seq.contracts.run_dir import RunDirectory
from keras_seq.contracts.tokenizer import TokenizerSpec
from keras_seq.contracts.vocab import Vocabulary, read_labels

__all__ = ["ContractError", "TokenizerSpec", "Vocabulary", "read_labels", "RunDirectory", "ExportDirectory"]
