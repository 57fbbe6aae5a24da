"""TF Serving's config messages, for writing the kit's files through the real schemas.

`ModelServerConfig` comes from tensorflow-serving-api. `BatchingParameters`
(session_bundle_config.proto; declared in `keras_seq.serving.batching`, whose server reads the
same file) and `MonitoringConfig` (monitoring_config.proto, declared here) are not in that wheel
(2.x ships only the model-server and logging configs): they are declared from TF Serving's .proto
files, the same package, names, numbers and types, which is all the text format reads. A test parses the kit's
files back with these classes and with the wheel's own `ModelServerConfig`.
"""

from __future__ import annotations

import functools


@functools.cache
def serving_messages() -> dict:
    """{"ModelServerConfig", "BatchingParameters", "MonitoringConfig"}: message classes.
    BatchingParameters is the serving room's declaration (`keras-seq serve` reads the same file)."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
    from tensorflow_serving.config import model_server_config_pb2

    from keras_seq.serving.batching import batching_parameters_message

    file = descriptor_pb2.FileDescriptorProto(
        name="keras_seq/monitoring_config.proto", package="tensorflow.serving", syntax="proto3"
    )
    field = descriptor_pb2.FieldDescriptorProto
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
    pool.Add(file)
    return {
        "ModelServerConfig": model_server_config_pb2.ModelServerConfig,
        "BatchingParameters": batching_parameters_message(),
        "MonitoringConfig": message_factory.GetMessageClass(
            pool.FindMessageTypeByName("tensorflow.serving.MonitoringConfig")
        ),
    }
