from zenml_core.testing.conformance import PluginConformance, ProcessingBackendConformance
from zenml_dataflow.dataflow import ProcessingDataFlowBackend
from zenml_dataflow.portable import PortableProcessingBackend

VALID = {"project": "my-project", "region": "europe-west1", "staging_location": "gs://my-bucket/df"}


class TestPluginDistribution(PluginConformance):
    distribution = "zenml-dataflow"
    backends = {"processing": ["dataflow", "portable"]}


class TestDataflowBackend(ProcessingBackendConformance):
    backend_class = ProcessingDataFlowBackend
    name = "dataflow"
    params = VALID
    bad_params = [
        ({**VALID, "project": "My Project"}, "not a Google Cloud project id"),
        ({**VALID, "region": "europe-west1-b"}, "is a zone"),
        ({**VALID, "region": "mars"}, "not a region"),
        ({**VALID, "staging_location": "/tmp/staging"}, "must be a Cloud Storage folder"),
        ({**VALID, "temp_location": "s3://my-bucket/tmp"}, "must be a Cloud Storage folder"),
        ({**VALID, "sdk_container_image": "Not An Image"}, "not a valid image reference"),
        ({**VALID, "sdk_container_image": "zenmlcore/zenml-core:0.0.9"}, "is zenml-core 0.0.9"),
        ({**VALID, "num_workers": 4, "max_num_workers": 2}, "below num_workers"),
        ({**VALID, "service_account": "me@gmail.com"}, "not a service account"),
        ({**VALID, "labels": {"Team": "x"}}, "not a Google Cloud label"),
        (
            {**VALID, "dataflow_service_options": ["worker_accelerator=nvidia-l4"]},
            "type:nvidia-l4;count:1",
        ),
        ({**VALID, "extra_packages": ["mycode.py"]}, "not a wheel or sdist"),
        ({**VALID, "worker_start_timeout_seconds": 0}, "must be above 0"),
    ]


class TestPortableBackend(ProcessingBackendConformance):
    backend_class = PortableProcessingBackend
    name = "portable"
    params = {"job_endpoint": "localhost:8099"}
    bad_params = [
        ({"job_endpoint": "http://flink"}, "not HOST:PORT"),
        ({"environment_type": "PROCESS"}, "boot binary"),
        ({"environment_type": "EXTERNAL"}, "needs environment_config"),
        ({"environment_type": "LOOPBACK", "environment_config": "x:1"}, "takes no environment"),
        ({"environment_config": "zenmlcore/zenml-core:0.0.9"}, "is zenml-core 0.0.9"),
        ({"shared_data_location": "/mnt/shared"}, "must be a URI"),
        ({"extra_args": ["--runner=FlinkRunner"]}, "not one this backend sets"),
        ({"parallelism": 0}, "at least 1"),
    ]
