"""The model lifecycle without a server: version policies, TF Serving's models.config read without
TensorFlow, and `ModelVersions` loading, refusing, switching and unloading (a stand-in loader:
these tests are about the bookkeeping; the drills run the real server on real exports)."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from keras_seq.serving.model_config import ModelEntry, VersionPolicy, read_model_config
from keras_seq.serving.versions import ModelVersions, UnknownLabel, VersionNotFound, entry_for


@pytest.mark.parametrize(
    "spec, available, wanted",
    [
        ("latest:1", [3, 1, 2], [3]),
        ("latest:2", [3, 1, 2], [2, 3]),
        ("latest:5", [1, 2], [1, 2]),
        ("all", [2, 1], [1, 2]),
        ("specific:1,3", [1, 2, 3], [1, 3]),
        ("specific:7", [1, 2], []),
    ],
)
def test_version_policies_select_as_tf_serving(spec, available, wanted):
    policy = VersionPolicy.parse(spec)
    assert policy.select(available) == wanted and str(policy) == spec


@pytest.mark.parametrize("spec", ["latest", "latest:0", "newest:1", "specific:", "specific:a", "all:2"])
def test_bad_version_policies_are_named(spec):
    with pytest.raises(ValueError, match="latest:N, all or specific"):
        VersionPolicy.parse(spec)


def test_models_config_is_read_without_tensorflow(tmp_path):
    config = tmp_path / "models.config"
    config.write_text(
        "# written by hand\nmodel_config_list {\n"
        '  config { name: "a" base_path: "/models/a" model_platform: "tensorflow"\n'
        "    model_version_policy { specific { versions: 2 versions: 3 } }\n"
        '    version_labels { key: "stable" value: 2 } version_labels { key: "canary" value: 3 } }\n'
        '  config { name: "b" base_path: "b" model_version_policy { latest { num_versions: 2 } }\n'
        "    logging_config { sampling_config { sampling_rate: 0.5 } } }\n"
        "}\n"
    )
    a, b = read_model_config(config)
    assert a == ModelEntry(
        "a", Path("/models/a"), VersionPolicy("specific", versions=(2, 3)), {"stable": 2, "canary": 3}
    )
    assert b.base_path == tmp_path / "b" and b.policy == VersionPolicy("latest", 2) and b.labels == {}
    config.write_text("model_config_list { config { name: 1 }")
    with pytest.raises(ValueError, match=r"models\.config: not a TF Serving ModelServerConfig"):
        read_model_config(config)
    with pytest.raises(FileNotFoundError, match="missing"):
        read_model_config(tmp_path / "nope.config")


class _Predictor:
    """Stands in for `OnnxPredictor`: answers its version's number; a version folder holding
    BROKEN fails to load; `gate` (an Event) holds its answers while a test looks."""

    def __init__(self, onnx_dir: Path, gate: threading.Event | None = None) -> None:
        if (onnx_dir / "BROKEN").exists():
            raise ValueError(f"{onnx_dir}: damaged")
        self.number, self.gate = int(onnx_dir.parent.name), gate

    def predict(self, texts):
        if self.gate is not None and texts != ["warm up"]:
            self.gate.wait(10)
        return [{"version": self.number} for _ in texts]


def _version(base: Path, number: int, broken: bool = False) -> None:
    onnx = base / str(number) / "onnx"
    onnx.mkdir(parents=True)
    (onnx / "model.json").write_text(json.dumps({"n": number}))
    if broken:
        (onnx / "BROKEN").write_text("")


def _states(model: ModelVersions) -> dict[int, str]:
    return {int(s["version"]): s["state"] for s in model.status()}


def test_versions_load_switch_refuse_and_unload(tmp_path):
    base = tmp_path / "model"
    _version(base, 1)
    model = ModelVersions(ModelEntry("m", base, VersionPolicy("latest", 1), {"stable": 1}), _Predictor)
    model.poll()
    assert _states(model) == {1: "AVAILABLE"} and model.ready
    with model.serving() as (number, predictor):
        assert number == 1 and predictor.predict(["x"]) == [{"version": 1}]
    _version(base, 2)
    _version(base, 3, broken=True)
    model.poll()  # 3 is refused; the policy falls back to 2, which replaces 1
    status = {int(s["version"]): s for s in model.status()}
    assert {v: s["state"] for v, s in status.items()} == {3: "END", 2: "AVAILABLE", 1: "END"}
    assert status[3]["status"]["error_code"] == "UNKNOWN" and "damaged" in status[3]["status"]["error_message"]
    assert status[2]["status"] == {"error_code": "OK", "error_message": ""}
    with model.serving() as (number, _):
        assert number == 2
    with pytest.raises(VersionNotFound, match=r"Specific\(m, 1\)"):  # unloaded: as TF Serving says it
        model.serving(1).__enter__()
    with pytest.raises(VersionNotFound, match=r"Specific\(m, 1\)"):  # the label points at an unloaded version
        model.serving(label="stable").__enter__()
    with pytest.raises(UnknownLabel, match="Unrecognized servable version label: canary"):
        model.serving(label="canary").__enter__()
    model.poll()  # a refused version is not tried again while its model.json is unchanged
    assert _states(model)[3] == "END"
    (base / "3" / "onnx" / "BROKEN").unlink()
    (base / "3" / "onnx" / "model.json").write_text('{"fixed": true}')
    time.sleep(0.01)
    model.poll()
    assert _states(model) == {3: "AVAILABLE", 2: "END", 1: "END"}


def test_an_old_version_unloads_only_after_its_requests_end(tmp_path):
    base = tmp_path / "model"
    _version(base, 1)
    gate = threading.Event()
    model = ModelVersions(ModelEntry("m", base, VersionPolicy(), {}), lambda d: _Predictor(d, gate))
    model.poll()
    answers: list = []

    def request():
        with model.serving() as (_, predictor):
            answers.append(predictor.predict(["x"]))

    in_flight = threading.Thread(target=request)
    in_flight.start()
    time.sleep(0.2)  # the request holds version 1
    _version(base, 2)
    poller = threading.Thread(target=model.poll)
    poller.start()
    deadline = time.monotonic() + 10
    while _states(model).get(1) != "UNLOADING" and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _states(model) == {2: "AVAILABLE", 1: "UNLOADING"}  # new requests go to 2; 1 waits for its request
    with model.serving() as (number, _):
        assert number == 2
    gate.set()
    in_flight.join(10)
    poller.join(10)
    assert answers == [[{"version": 1}]] and _states(model) == {2: "AVAILABLE", 1: "END"}


def test_serve_takes_exports_or_base_paths_and_names_what_is_wrong(tmp_path):
    _version(tmp_path / "base", 4)
    entry = entry_for(tmp_path / "base", None, VersionPolicy(), {})
    assert entry.name == "base" and entry.base_path == tmp_path / "base"
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="neither an export"):
        entry_for(tmp_path / "empty", None, VersionPolicy(), {})
    with pytest.raises(FileNotFoundError, match="no export or model base path"):
        entry_for(tmp_path / "nowhere", None, VersionPolicy(), {})
