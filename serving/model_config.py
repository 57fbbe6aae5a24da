"""TF Serving's ``models.config`` (a ModelServerConfig in protobuf text format), read without
TensorFlow: the file `keras-seq kit` writes, and TF Serving reads, drives `keras-seq serve` too
(names, base paths, version policies, version labels).

The messages are declared here from TF Serving's .proto files (model_server_config.proto,
file_system_storage_path_source.proto): the same package, names, numbers and types, which is all
the text format reads; fields this server does not use (logging_config, model_platform, ...) are
skipped. A test parses the kit's file with these and with tensorflow-serving-api's own classes.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class VersionPolicy:
    """Which numbered versions to serve, as TF Serving's ServableVersionPolicy says it:
    ``latest:N`` (the N highest, TF Serving's default with N=1), ``all``, ``specific:1,2``."""

    kind: str = "latest"
    count: int = 1
    versions: tuple[int, ...] = ()

    @classmethod
    def parse(cls, spec: str) -> VersionPolicy:
        kind, _, value = spec.partition(":")
        if kind == "latest" and value.isdigit() and int(value) > 0:
            return cls("latest", int(value))
        if kind == "all" and not value:
            return cls("all")
        if kind == "specific" and value and all(v.strip().isdigit() for v in value.split(",")):
            return cls("specific", versions=tuple(sorted(int(v) for v in value.split(","))))
        raise ValueError(f"version policy must be latest:N, all or specific:1,2,...; received {spec!r}")

    def select(self, available: list[int]) -> list[int]:
        """The versions to serve among those on disk."""
        available = sorted(available)
        if self.kind == "latest":
            return available[-self.count :]
        if self.kind == "all":
            return available
        return [v for v in available if v in self.versions]

    def __str__(self) -> str:
        if self.kind == "specific":
            return "specific:" + ",".join(map(str, self.versions))
        return "all" if self.kind == "all" else f"latest:{self.count}"


def parse_label(item: str) -> tuple[str, int]:
    """``LABEL=VERSION`` (``stable=2``) -> ("stable", 2), or one clear line."""
    label, _, version = item.partition("=")
    if not label or not version.isdigit():
        raise ValueError(f"a version label is LABEL=VERSION (e.g. stable=2); got {item!r}")
    return label, int(version)


@dataclass(frozen=True)
class ModelEntry:
    """One model of the config: its URL name, the folder of numbered versions, policy and labels."""

    name: str
    base_path: Path
    policy: VersionPolicy = VersionPolicy()
    labels: dict[str, int] = field(default_factory=dict)


@functools.cache
def _messages():
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    proto = descriptor_pb2.FileDescriptorProto(
        name="keras_seq/model_server_config.proto", package="tensorflow.serving", syntax="proto3"
    )
    F = descriptor_pb2.FieldDescriptorProto
    optional, repeated = F.LABEL_OPTIONAL, F.LABEL_REPEATED

    def message(parent, name: str, fields: list[tuple]):
        m = parent.add(name=name)
        for field_name, number, kind, label, type_name in fields:
            m.field.add(name=field_name, number=number, type=kind, label=label, type_name=type_name or None)
        return m

    P = ".tensorflow.serving.FileSystemStoragePathSourceConfig.ServableVersionPolicy"
    source = message(proto.message_type, "FileSystemStoragePathSourceConfig", [])
    policy = message(
        source.nested_type,
        "ServableVersionPolicy",
        [
            ("latest", 100, F.TYPE_MESSAGE, optional, P + ".Latest"),
            ("all", 101, F.TYPE_MESSAGE, optional, P + ".All"),
            ("specific", 102, F.TYPE_MESSAGE, optional, P + ".Specific"),
        ],
    )
    message(policy.nested_type, "Latest", [("num_versions", 1, F.TYPE_UINT32, optional, "")])
    message(policy.nested_type, "All", [])
    message(policy.nested_type, "Specific", [("versions", 1, F.TYPE_INT64, repeated, "")])
    config = message(
        proto.message_type,
        "ModelConfig",
        [
            ("name", 1, F.TYPE_STRING, optional, ""),
            ("base_path", 2, F.TYPE_STRING, optional, ""),
            ("model_platform", 4, F.TYPE_STRING, optional, ""),
            ("model_version_policy", 7, F.TYPE_MESSAGE, optional, P),
            ("version_labels", 8, F.TYPE_MESSAGE, repeated, ".tensorflow.serving.ModelConfig.VersionLabelsEntry"),
        ],
    )
    entry = message(
        config.nested_type,
        "VersionLabelsEntry",
        [("key", 1, F.TYPE_STRING, optional, ""), ("value", 2, F.TYPE_INT64, optional, "")],
    )
    entry.options.map_entry = True
    message(
        proto.message_type,
        "ModelConfigList",
        [("config", 1, F.TYPE_MESSAGE, repeated, ".tensorflow.serving.ModelConfig")],
    )
    message(
        proto.message_type,
        "ModelServerConfig",
        [("model_config_list", 1, F.TYPE_MESSAGE, optional, ".tensorflow.serving.ModelConfigList")],
    )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("tensorflow.serving.ModelServerConfig"))


def read_text_proto(path: str | Path, message_class: type, file_role: str):
    """A protobuf text-format file of TF Serving's (`message_class`), parsed; unknown fields are
    skipped. One line naming the file (and `file_role`, the flag that named it) for a file that is
    missing, unreadable or not that message."""
    from google.protobuf import text_format

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: missing (the {file_role})") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: cannot be read ({error})") from None
    message = message_class()
    try:
        text_format.Parse(text, message, allow_unknown_field=True)
    except text_format.ParseError as error:
        raise ValueError(f"{path}: not a TF Serving {message.DESCRIPTOR.name} ({error})") from None
    return message


def read_model_config(path: str | Path) -> list[ModelEntry]:
    """The models of a ``models.config`` file; a relative base path is read from the file's folder.
    One clear line (naming the file) for a file that is missing or not a ModelServerConfig."""
    path = Path(path)
    message = read_text_proto(path, _messages(), "--model-config-file")
    entries = []
    for config in message.model_config_list.config:
        if not config.name or not config.base_path:
            raise ValueError(f"{path}: every model needs a name and a base_path")
        chosen = config.model_version_policy
        if chosen.HasField("all"):
            policy = VersionPolicy("all")
        elif chosen.HasField("specific"):
            policy = VersionPolicy("specific", versions=tuple(sorted(chosen.specific.versions)))
        elif chosen.HasField("latest"):
            policy = VersionPolicy("latest", max(1, chosen.latest.num_versions))
        else:
            policy = VersionPolicy()
        base = Path(config.base_path)
        entries.append(
            ModelEntry(
                config.name, base if base.is_absolute() else path.parent / base, policy, dict(config.version_labels)
            )
        )
    names = [e.name for e in entries]
    if not entries or len(set(names)) != len(names):
        raise ValueError(f"{path}: expected one or more models with different names; found {names}")
    return entries
