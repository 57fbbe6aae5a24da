"""TF Serving's config messages, for writing the kit's files through the real schemas.

`ModelServerConfig` comes from tensorflow-serving-api. `BatchingParameters`
(session_bundle_config.proto) and `MonitoringConfig` (monitoring_config.proto)
are not in that wheel (2.x ships only the model-server and logging configs), so
they are declared here from TF Serving's .proto files: the same package, names,
numbers and types, which is all the text format reads. A test parses the kit's
files back with these classes and with the wheel's own `ModelServerConfig`.
"""

from __future__ import annotations

import functools


@functools.cache
def serving_messages() -> dict:
    """{"ModelServerConfig", "BatchingParameters", "MonitoringConfig"}: message classes."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, wrappers_pb2
    from tensorflow_serving.config import model_server_config_pb2

    file = descriptor_pb2.FileDescriptorProto(
        name="keras_seq/serving_configs.proto",
        package="tensorflow.serving",
        syntax="proto3",
        dependency=["google/protobuf/wrappers.proto"],
    )
    field = descriptor_pb2.FieldDescriptorProto
    batching = file.message_type.add(name="BatchingParameters")
    for number, name in enumerate(
        ["max_batch_size", "batch_timeout_micros", "max_enqueued_batches", "num_batch_threads"], 1
    ):
        batching.field.add(
            name=name,
            number=number,
            type=field.TYPE_MESSAGE,
            type_name=".google.protobuf.Int64Value",
            label=field.LABEL_OPTIONAL,
        )
    batching.field.add(name="allowed_batch_sizes", number=6, type=field.TYPE_INT64, label=field.LABEL_REPEATED)
    batching.field.add(name="pad_variable_length_inputs", number=7, type=field.TYPE_BOOL, label=field.LABEL_OPTIONAL)
    prometheus = file.message_type.add(name="PrometheusConfig")
    prometheus.field.add(name="enable", number=1, type=field.TYPE_BOOL, label=field.LABEL_OPTIONAL)
    prometheus.field.add(name="path", number=2, type=field.TYPE_STRING, label=field.LABEL_OPTIONAL)
    monitoring = file.message_type.add(name="MonitoringConfig")
    monitoring.field.add(
        name="prometheus_config",
        number=1,
        type=field.TYPE_MESSAGE,
        type_name=".tensorflow.serving.PrometheusConfig",
        label=field.LABEL_OPTIONAL,
    )
    pool = descriptor_pool.DescriptorPool()
    wrappers = descriptor_pb2.FileDescriptorProto()
    wrappers_pb2.DESCRIPTOR.CopyToProto(wrappers)
    pool.Add(wrappers)
    pool.Add(file)
    messages = {
        name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"tensorflow.serving.{name}"))
        for name in ("BatchingParameters", "MonitoringConfig")
    }
    return {"ModelServerConfig": model_server_config_pb2.ModelServerConfig, **messages}
