"""The house: one import name, contracts read once, the task registry, a TF-free core."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from keras_seq.contracts import ContractError, ExportDirectory, RunDirectory, TokenizerSpec, Vocabulary, read_labels
from keras_seq.contracts.export_dir import read_onnx_info
from keras_seq.serving.tasks import answers_for, task_for_outputs
from keras_seq.tasks import TASKS, get_task
from tests.helpers import REPO, free_port, run_python

ROOMS = ("keras_seq", "pipelines", "export", "serving", "deploy")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The project's wheel, built once from the working tree."""
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(REPO)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return next(out.glob("keras_seq-*.whl"))


def test_wheel_installs_one_top_level_name(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/", 1)[0] for n in names}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"keras_seq"}
    top_level = next(n for n in names if n.endswith("top_level.txt"))
    assert zipfile.ZipFile(wheel).read(top_level).decode().split() == ["keras_seq"]
    # every module of the rooms is in the wheel, under keras_seq
    for room, prefix in (
        ("pipelines", "keras_seq/pipelines"),
        ("export", "keras_seq/export"),
        ("serving", "keras_seq/serving"),
        ("deploy", "keras_seq/deploy"),
    ):
        for source in (REPO / room).rglob("*.py"):
            assert f"{prefix}/{source.relative_to(REPO / room).as_posix()}" in names
    assert "keras_seq/pipelines/configs/demo.toml" in names
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    assert "keras-seq = keras_seq.cli:main" in zipfile.ZipFile(wheel).read(entry).decode()


def test_no_module_imports_a_room_by_its_folder_name():
    pattern = re.compile(r"^\s*(from|import) (pipelines|export|serving|deploy)\b", re.M)
    offenders = [
        str(p.relative_to(REPO))
        for folder in (*ROOMS, "tests", "benchmarks")
        for p in (REPO / folder).rglob("*.py")
        if pattern.search(p.read_text(encoding="utf-8"))
    ]
    assert offenders == []


def test_task_branches_live_in_the_registry_only():
    pattern = re.compile(r"\b(task|kind)\s*[!=]=\s*\"(classify|tag|lm|crf)\"|\btask\.name\s*[!=]=")
    offenders = []
    for folder in ROOMS:
        for path in (REPO / folder).rglob("*.py"):
            if "/tasks/" in path.as_posix():  # each room's task registry: where per-task code belongs
                continue
            offenders += [
                f"{path.relative_to(REPO)}:{n}"
                for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
                if pattern.search(line)
            ]
    assert offenders == []


def test_private_keras_api_is_touched_in_one_module():
    users = [
        str(p.relative_to(REPO))
        for folder in ROOMS
        for p in (REPO / folder).rglob("*.py")
        if re.search(r"keras\.src\b|_nodes_by_depth", p.read_text(encoding="utf-8"))
    ]
    assert users == ["keras_seq/_keras_compat.py"]


def test_core_imports_and_trains_on_jax_without_tensorflow():
    code = (
        "import sys\n"
        "sys.modules['tensorflow'] = None\n"  # any attempt to import TensorFlow fails
        "import numpy as np, keras, keras_seq\n"
        "assert keras.backend.backend() == 'jax'\n"
        "m = keras_seq.build_classifier(50, 2, cell='lstm', units=8, embed_dim=8)\n"
        "m.compile('adam', 'sparse_categorical_crossentropy')\n"
        "x = np.random.default_rng(0).integers(1, 50, (16, 7)); y = (x[:, 0] > 25).astype('int32')\n"
        "m.fit(x, y, epochs=1, verbose=0)\n"
        "from keras_seq.tasks import get_task; from keras_seq.contracts import TokenizerSpec\n"
        "print('ok', 'tensorflow' in sys.modules and sys.modules['tensorflow'] is not None)\n"
    )
    result = run_python(code, env={"KERAS_BACKEND": "jax"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split()[-2:] == ["ok", "False"]


def test_without_keras_the_package_imports_and_says_what_is_missing():
    code = (
        "import sys\n"
        "for m in ('keras', 'tensorflow'): sys.modules[m] = None\n"
        "import keras_seq, keras_seq.serving.predictor, keras_seq.cli\n"
        "try:\n    keras_seq.LSTM\nexcept ImportError as e:\n    print('ImportError:', e)\n"
    )
    result = run_python(code)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "keras_seq.LSTM: keras_seq's layers need keras and a backend, and keras is missing" in result.stdout


def test_cli_version_and_quiet_start():
    result = subprocess.run(
        [sys.executable, "-m", "keras_seq.cli", "--version"], capture_output=True, text=True, timeout=120, cwd=REPO
    )
    assert result.returncode == 0 and re.fullmatch(r"keras-seq \d+\.\d+\.\d+\n", result.stdout)
    result = subprocess.run(
        [sys.executable, "-m", "keras_seq.cli", "evaluate", str(REPO / "nowhere")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        f"keras-seq evaluate: error: {REPO / 'nowhere'}: no run directory there"
    ]
    result = subprocess.run(
        [sys.executable, "-m", "keras_seq.cli", "serve", str(REPO), "--port", "70000"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert result.returncode == 2 and "a port is 1-65535; got 70000" in result.stderr
    assert "Traceback" not in result.stderr


# -- the registry ------------------------------------------------------------------------------------------


def test_registry_names_every_task_once():
    assert list(TASKS) == ["classify", "tag", "lm", "seq2seq"]
    assert get_task("tag").label_file == "tags.txt" and get_task("lm").label_file is None
    assert get_task("seq2seq").label_file == "targets.txt"
    with pytest.raises(ValueError, match="unknown task 'translate'; known: classify, tag, lm, seq2seq"):
        get_task("translate")
    assert task_for_outputs({"label_names": [], "probabilities": []}).name == "classify"
    assert task_for_outputs({"tags": [], "lengths": 0}).name == "tag"
    assert task_for_outputs({"loss": 1.0, "tokens_scored": 2}).name == "lm"
    assert task_for_outputs({"output": [], "output_lengths": 0, "score": 0.0}).name == "seq2seq"


@pytest.mark.parametrize("name", list(TASKS))
def test_answers_round_trip_through_signature_outputs(name):
    task = answers_for(name)
    labels = ["neg", "pos"] if name == "classify" else ["<PAD>", "<UNK>", "B-PER", "O"]
    answer = {
        "classify": {"label": "pos", "probabilities": {"neg": 0.25, "pos": 0.75}},
        "tag": {"tokens": ["Ada", "ran"], "tags": ["B-PER", "O"]},
        "lm": {"tokens_scored": 3, "loss": 0.5, "perplexity": 1.6487212707001282},
        "seq2seq": {"output": ["HH", "AH0", "L", "OW1"], "score": -0.125},
    }[name]
    assert task.answer_from_outputs(task.outputs_from_answer(answer, labels), labels) == answer


# -- the contracts: one validating reader, one line naming the file ------------------------------------------


def _spec_file(tmp_path: Path, **changes) -> Path:
    TokenizerSpec().save(tmp_path)
    data = json.loads((tmp_path / "tokenizer.json").read_text())
    data.update(changes)
    (tmp_path / "tokenizer.json").write_text(json.dumps(data))
    return tmp_path / "tokenizer.json"


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"level": "sentence"}, "field 'level' must be one of"),
        ({"max_len": -1}, "field 'max_len' must be a positive integer"),
        ({"truncate": "middle"}, "field 'truncate' must be one of"),
        ({"colour": "blue"}, "unknown field(s) ['colour']"),
        ({"lower": "yes"}, "field 'lower' must be bool"),
        ({"max_len": True}, "field 'max_len' must be int or null"),
        ({"vocab_file": "../etc/passwd"}, "field 'vocab_file' must be a file name beside it"),
        ({"rules_version": 2}, "rules version 2 is not supported"),
    ],
)
def test_tokenizer_contract_refuses_bad_fields(tmp_path, changes, message):
    path = _spec_file(tmp_path, **changes)
    with pytest.raises(ContractError) as error:
        TokenizerSpec.load(path)
    assert str(error.value).startswith(f"{path}: ") and message in str(error.value)


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "the file is empty"),
        ("{", "not valid JSON"),
        ("[1]", "expected a JSON object"),
        ('{"lower": true}', "missing field(s)"),
        ("[" * 100000, "not valid JSON"),
    ],
)
def test_tokenizer_contract_names_the_file_for_malformed_json(tmp_path, text, message):
    path = tmp_path / "tokenizer.json"
    path.write_text(text)
    with pytest.raises(ContractError, match=re.escape(f"{path}: ") + ".*" + re.escape(message)):
        TokenizerSpec.load(path)


def test_older_tokenizer_files_read_with_defaults(tmp_path):
    path = _spec_file(tmp_path)
    data = json.loads(path.read_text())
    del data["lower_words"], data["zero_digits"]
    path.write_text(json.dumps(data))
    spec = TokenizerSpec.load(tmp_path)
    assert spec.lower_words is False and spec.zero_digits is False


def test_vocabulary_and_label_files(tmp_path):
    Vocabulary(["<PAD>", "<UNK>", "a", "\n"], level="char").save(tmp_path / "chars.txt")
    assert Vocabulary.load(tmp_path / "chars.txt", "char").tokens == ["<PAD>", "<UNK>", "a", "\n"]
    (tmp_path / "labels.txt").write_text("")
    with pytest.raises(ContractError, match=re.escape(f"{tmp_path / 'labels.txt'}: the file is empty")):
        read_labels(tmp_path / "labels.txt")
    (tmp_path / "vocab.txt").write_text("the\nof\n")
    with pytest.raises(ContractError, match="lines 1-2 must be the reserved"):
        Vocabulary.load(tmp_path / "vocab.txt")
    (tmp_path / "chars.txt").write_text("-1\t<PAD>\n-2\t<UNK>\nx\ty\n")
    with pytest.raises(ContractError, match=re.escape(f"{tmp_path / 'chars.txt'}:3: expected")):
        Vocabulary.load(tmp_path / "chars.txt", "char")


def test_run_and_export_directories_name_what_is_wrong(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a run directory"):
        RunDirectory(tmp_path).config()
    (tmp_path / "config.toml").write_text("task = [")
    with pytest.raises(ContractError, match=re.escape(f"{tmp_path / 'config.toml'}: not valid TOML")):
        RunDirectory(tmp_path).config()
    with pytest.raises(FileNotFoundError, match="not an export"):
        ExportDirectory(tmp_path).info()
    (tmp_path / "export.json").write_text("")
    with pytest.raises(ContractError, match=re.escape(f"{tmp_path / 'export.json'}: the file is empty")):
        ExportDirectory(tmp_path).info()
    (tmp_path / "export.json").write_text(json.dumps({"task": "classify"}))
    with pytest.raises(ContractError, match="missing field"):
        ExportDirectory(tmp_path).info()
    (tmp_path / "model.json").write_text(json.dumps({"format_version": 9}))
    with pytest.raises(ContractError, match="format_version 9 is not supported"):
        read_onnx_info(tmp_path)


@pytest.mark.slow
def test_serving_only_venv_answers_an_export(tmp_path, wheel, demo_export):
    """`pip install keras-seq[serving]` from the local wheel: no TensorFlow (nor any Keras backend), and it answers."""
    export = demo_export
    venv = tmp_path / "venv"
    # (without a pip of its own: this venv's pip installs into it, `pip --python`, and saves ensurepip's)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    pip = [sys.executable, "-m", "pip", "--python", str(python), "--disable-pip-version-check"]
    install = subprocess.run(
        [*pip, "install", "-q", "--no-compile", f"{wheel}[serving]"], capture_output=True, text=True, timeout=900
    )
    assert install.returncode == 0, install.stderr[-3000:]
    listed = subprocess.run([*pip, "list", "--format=json"], capture_output=True, text=True, check=True).stdout
    installed = {p["name"].lower() for p in json.loads(listed)}
    # keras itself is the core requirement (the layers); no backend comes with [serving]
    assert not installed & {"tensorflow", "tensorflow-cpu", "tf-keras", "jax", "jaxlib", "torch"}, installed
    code = (
        "import json, sys\nfrom keras_seq.serving.predictor import OnnxPredictor\nimport keras_seq.serving.server\n"
        "import keras_seq\ntry:\n    keras_seq.LSTM\nexcept ImportError as e:\n    print(e, file=sys.stderr)\n"
        "print(json.dumps(OnnxPredictor(sys.argv[1]).predict(['the movie was good , not bad at all'])))"
    )
    result = subprocess.run(
        [str(python), "-c", code, str(export)], capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout)[0]["label"] in ("pos", "neg")
    assert "keras's backend (tensorflow) is missing" in result.stderr
    cli = subprocess.run(
        [str(venv / "bin" / "keras-seq"), "predict", str(export), "a text"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert cli.returncode == 0, cli.stderr[-3000:]
    assert "probabilities" in json.loads(cli.stdout)
    _container_command_answers(venv, export, wheel, tmp_path)


def _container_command_answers(venv: Path, export: Path, wheel: Path, tmp_path: Path) -> None:
    """The kit's ONNX container, short of a Docker engine: its CMD, run from the [serving]-only
    venv on the export folder the Dockerfile copies (loopback instead of 0.0.0.0, a free port)."""
    import time
    import urllib.request

    from keras_seq.deploy.kserve import dockerfile_instructions
    from keras_seq.deploy.tfserving import write_kit

    kit = tmp_path / "kit"
    write_kit([export], kit, onnx=True, wheel=wheel)
    steps = dockerfile_instructions((kit / "onnx" / "reviews" / "Dockerfile").read_text())
    command = json.loads(dict(steps)["CMD"])
    source, target = next(a.split()[-2:] for k, a in steps if k == "COPY" and a.startswith("--chown"))
    assert target == command[2]  # the server reads the export the image copies
    port = free_port()
    command = [str(venv / "bin" / command[0]), *command[1:]]
    command[command.index(target)] = str(kit / source)
    command[command.index("--host") + 1], command[command.index("--port") + 1] = "127.0.0.1", str(port)
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path)
    try:
        url = f"http://127.0.0.1:{port}/v1/models/reviews"
        for _ in range(240):
            try:
                urllib.request.urlopen(url, timeout=2)  # the HEALTHCHECK's request
                break
            except OSError:
                time.sleep(0.25)
        request = urllib.request.Request(url + ":predict", data=b'{"instances": ["good , not bad"]}')
        with urllib.request.urlopen(request, timeout=30) as reply:
            assert json.loads(reply.read())["predictions"][0]["label"] in ("pos", "neg")
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_a_one_label_training_split_is_said_loudly(caplog):
    from keras_seq.pipelines.tasks import pipeline_for

    with caplog.at_level("WARNING"):
        assert pipeline_for("classify").label_vocabulary({"neg": 3}).tokens == ["neg"]
    assert "one label only (neg)" in caplog.text and "data.limit" in caplog.text
    caplog.clear()
    pipeline_for("classify").label_vocabulary({"neg": 3, "pos": 2})
    assert "one label" not in caplog.text
