"""A model's versions as TF Serving manages them: a base path of numbered folders, polled; a new
version loaded and checked off the request path, then switched to atomically; an old one
unloaded once its in-flight requests end; a version policy; version labels.

BASE_PATH/
  1/onnx/...        a version: its ONNX half (model.json lists the checksums of the files beside it)
  2/onnx/...        the SavedModel's files beside onnx/ are TF Serving's; this server reads onnx/
  .2.staging-PID/   an export in progress (hidden names are never versions)

A version that fails its checks (a missing or changed file, a graph ONNX Runtime refuses, a
warm-up answer that fails) is refused with a logged reason, reported with its error in the
model's status, and the versions already serving go on serving. It is not tried again until its
``model.json`` changes. States and error codes are TF Serving's (``GET /v1/models/NAME``).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from keras_seq.contracts.export_dir import EXPORT_FILE, ONNX_DIR, ONNX_INFO_FILE, SAVEDMODEL_DIR, ExportDirectory
from keras_seq.contracts.files import read_json_object
from keras_seq.serving.model_config import ModelEntry, VersionPolicy, read_model_config

logger = logging.getLogger(__name__)
WARMUP_TEXT = "warm up"


class VersionNotFound(LookupError):
    """The request names a version this server does not serve (HTTP 404, as TF Serving)."""

    status = 404


class UnknownLabel(VersionNotFound):
    """The request names a version label no version has (HTTP 400, TF Serving's INVALID_ARGUMENT)."""

    status = 400


@dataclass
class Version:
    number: int
    state: str  # START | LOADING | AVAILABLE | UNLOADING | END (TF Serving's ModelVersionStatus.State)
    predictor: Any = None
    error: str = ""
    stamp: float = 0.0  # model.json's mtime when loaded (or refused)
    in_flight: int = 0
    idle: threading.Condition = field(default_factory=threading.Condition)

    def status(self) -> dict:
        return {
            "version": str(self.number),
            "state": self.state,
            "status": {"error_code": "UNKNOWN" if self.error else "OK", "error_message": self.error},
        }


def versions_on_disk(base_path: Path) -> dict[int, Path]:
    """{version: its onnx/ folder} for the numbered folders of `base_path` that hold an ONNX half.
    An export directory whose versions carry no ONNX half (written before keras-seq 0.3) is one
    version: export.json's, answered from its ``onnx/``."""
    if (base_path / EXPORT_FILE).is_file():
        info = read_json_object(base_path / EXPORT_FILE, "the export summary")
        legacy = base_path / ONNX_DIR
        return {int(info.get("version", 1)): legacy} if (legacy / ONNX_INFO_FILE).is_file() else {}
    if not base_path.is_dir():
        return {}
    return {
        int(p.name): p / ONNX_DIR
        for p in base_path.iterdir()
        if p.name.isdigit() and (p / ONNX_DIR / ONNX_INFO_FILE).is_file()
    }


def entry_for(path: str | Path, name: str | None, policy: VersionPolicy, labels: dict[str, int]) -> ModelEntry:
    """What `keras-seq serve PATH` serves: an export directory (its ``savedmodel/NAME`` base path)
    or a base path of numbered versions itself."""
    path = Path(path)
    if (path / EXPORT_FILE).is_file():
        info = ExportDirectory(path).info()
        base = path / SAVEDMODEL_DIR / info["name"]
        if not versions_on_disk(base):  # written before versions carried their ONNX half: one version
            logger.warning(
                "%s: its versions carry no %s/ half (keras-seq < 0.3): serving %s only", path, ONNX_DIR, ONNX_DIR
            )
            base = path
        return ModelEntry(name or info["name"], base, policy, labels)
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: no export or model base path there")
    if not versions_on_disk(path):
        raise FileNotFoundError(
            f"{path}: neither an export ({EXPORT_FILE}) nor a base path of numbered versions with {ONNX_DIR}/"
        )
    return ModelEntry(name or path.name, path, policy, labels)


def _stamp(onnx_dir: Path) -> float:
    try:
        return (onnx_dir / ONNX_INFO_FILE).stat().st_mtime
    except FileNotFoundError:  # removed since it was listed
        return -1.0


class ModelVersions:
    """The versions of one model: what is on disk, what is loaded, what answers."""

    def __init__(self, entry: ModelEntry, load: Callable[[Path], Any]) -> None:
        self.entry, self._load = entry, load
        self.name = entry.name
        self._lock = threading.Lock()
        self._versions: dict[int, Version] = {}  # every version seen, whatever its state
        self._labels = dict(entry.labels)

    # -- requests --------------------------------------------------------------------------
    @contextlib.contextmanager
    def serving(self, version: int | None = None, label: str | None = None) -> Iterator[tuple[int, Any]]:
        """(version, predictor) for one request; the version stays loaded until the block ends."""
        with self._lock:
            if label is not None:
                if label not in self._labels:
                    raise UnknownLabel(f"Unrecognized servable version label: {label}")
                version = self._labels[label]
            available = sorted(v for v, s in self._versions.items() if s.state == "AVAILABLE")
            if version is None:
                if not available:
                    raise VersionNotFound(f"model {self.name!r} has no version available")
                version = available[-1]  # TF Serving answers from the latest loaded version
            chosen = self._versions.get(version)
            if chosen is None or chosen.state != "AVAILABLE":
                raise VersionNotFound(f"Servable not found for request: Specific({self.name}, {version})")
            with chosen.idle:  # (lock order: the model's, then the version's)
                chosen.in_flight += 1
        try:
            yield version, chosen.predictor
        finally:
            with chosen.idle:
                chosen.in_flight -= 1
                chosen.idle.notify_all()

    def status(self, version: int | None = None) -> list[dict]:
        """TF Serving's ``model_version_status``, newest first (one entry with `version`)."""
        with self._lock:
            if version is not None and version not in self._versions:
                raise VersionNotFound(f"Could not find version {version} of model {self.name!r}")
            chosen = [self._versions[version]] if version is not None else self._versions.values()
            return [v.status() for v in sorted(chosen, key=lambda v: -v.number)]

    @property
    def ready(self) -> bool:
        with self._lock:
            return any(v.state == "AVAILABLE" for v in self._versions.values())

    # -- the manager's side ------------------------------------------------------------------
    def set_labels(self, labels: dict[str, int]) -> None:
        with self._lock:
            if labels != self._labels:
                logger.info("model %s: version labels %s", self.name, labels)
            self._labels = dict(labels)

    def poll(self) -> None:
        """Loads what the policy wants and is not loaded, then unloads what it no longer wants."""
        on_disk = versions_on_disk(self.entry.base_path)
        while True:  # a refused version does not count: the policy picks among the others
            wanted = self.entry.policy.select([v for v in on_disk if not self._refused(v, on_disk[v])])
            if all(self._maybe_load(number, on_disk[number]) for number in wanted):
                break
        with self._lock:
            usable = {v for v, s in self._versions.items() if s.state == "AVAILABLE"}
            # Unload only what a loaded, wanted version replaces: a policy never leaves a model with nothing.
            retire = [v for v in usable if v not in wanted] if usable & set(wanted) else []
            for number in retire:
                self._versions[number].state = "UNLOADING"
        for number in retire:
            self._unload(number)

    def _refused(self, number: int, onnx_dir: Path) -> bool:
        """Refused before, and its model.json unchanged since."""
        with self._lock:
            known = self._versions.get(number)
        return known is not None and known.error != "" and known.stamp == _stamp(onnx_dir)

    def _maybe_load(self, number: int, onnx_dir: Path) -> bool:
        """Loads the version unless it is loaded; False if it was refused."""
        stamp = _stamp(onnx_dir)
        with self._lock:
            known = self._versions.get(number)
            if known is not None and known.state in ("AVAILABLE", "LOADING"):
                return True
            self._versions[number] = Version(number, "LOADING", stamp=stamp)
        logger.info("model %s: loading version %d from %s", self.name, number, onnx_dir)
        try:
            predictor = self._load(onnx_dir)
            predictor.predict([WARMUP_TEXT])  # a session that cannot answer is not switched to
        except Exception as error:  # noqa: BLE001 - any failure refuses the version, never the server
            reason = f"{type(error).__name__}: {error}"
            logger.error("model %s: version %d refused (%s); the versions serving go on", self.name, number, reason)
            with self._lock:
                self._versions[number] = Version(number, "END", error=reason[:500], stamp=stamp)
            return False
        with self._lock:
            self._versions[number] = Version(number, "AVAILABLE", predictor, stamp=stamp)
        logger.info("model %s: version %d available", self.name, number)
        return True

    def _unload(self, number: int) -> None:
        version = self._versions[number]
        with version.idle:  # new requests no longer reach it (not AVAILABLE); wait for those that did
            version.idle.wait_for(lambda: version.in_flight == 0)
        with self._lock:
            self._versions[number] = Version(number, "END", stamp=version.stamp)
        logger.info("model %s: version %d unloaded", self.name, number)


class VersionManager:
    """Every model's versions, polled every `poll_seconds` by one background thread (0: once, at start);
    a ``models.config`` it was started from is read again on each poll, so labels can move."""

    def __init__(
        self,
        entries: list[ModelEntry],
        load: Callable[[Path], Any],
        poll_seconds: float = 1.0,
        config_file: Path | None = None,
    ) -> None:
        self.models = {e.name: ModelVersions(e, load) for e in entries}
        self.poll_seconds, self.config_file = poll_seconds, config_file
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def poll_once(self) -> None:
        if self.config_file is not None:
            try:
                for entry in read_model_config(self.config_file):
                    if entry.name in self.models:
                        self.models[entry.name].entry = entry
                        self.models[entry.name].set_labels(entry.labels)
            except (OSError, ValueError) as error:  # a config being rewritten: keep the last good one
                logger.warning("%s; keeping the configuration read before", error)
        for model in self.models.values():
            try:
                model.poll()
            except OSError as error:  # a base path on a volume that went away for a moment
                logger.warning("model %s: cannot read %s (%s)", model.name, model.entry.base_path, error)

    def start(self) -> None:
        self.poll_once()
        if self.poll_seconds > 0:
            self._thread = threading.Thread(target=self._run, name="keras-seq-versions", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            self.poll_once()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
