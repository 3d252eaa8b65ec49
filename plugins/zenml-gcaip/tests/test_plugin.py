import pytest

from zenml_core.testing.conformance import PluginConformance, TrainingBackendConformance
from zenml_gcaip.training import SingleGPUTrainingGCAIPBackend, VertexTrainingBackend

VALID = {"project": "my-project", "region": "europe-west4", "job_dir": "gs://bucket/vertex"}


class TestPluginDistribution(PluginConformance):
    distribution = "zenml-gcaip"
    backends = {"training": ["gcaip", "gcaip-single-gpu"]}


class TestVertexTrainingBackend(TrainingBackendConformance):
    backend_class = VertexTrainingBackend
    name = "gcaip"
    params = VALID
    bad_params = [
        ({**VALID, "project": "My Project"}, "not a Google Cloud project id"),
        ({**VALID, "region": "us-central1-a"}, "not a zone"),
        ({**VALID, "job_dir": "/tmp/vertex"}, "must be a Cloud Storage folder"),
        ({**VALID, "image": "Trainer:1.0"}, "not a valid image reference"),
        ({**VALID, "accelerator_type": "NVIDIA_TESLA_T4"}, "set together"),
        ({**VALID, "accelerator_count": 2}, "set together"),
        (
            {
                **VALID,
                "machine_type": "e2-standard-4",
                "accelerator_type": "NVIDIA_TESLA_A100",
                "accelerator_count": 3,
            },
            "attached to A2 machines only",
        ),
        ({**VALID, "accelerator_type": "NVIDIA_TESLA_K80", "accelerator_count": 1}, "retired"),
        (
            {
                **VALID,
                "machine_type": "a2-highgpu-1g",
                "accelerator_type": "NVIDIA_TESLA_A100",
                "accelerator_count": 2,
            },
            "takes accelerator_count in [1]",
        ),
        ({**VALID, "machine_type": "g2-standard-8"}, "comes with 1 GPU"),
        ({**VALID, "machine_type": "huge"}, "not a Vertex AI training machine type"),
        ({**VALID, "replica_count": 0}, "replica_count must be at least 1"),
        ({**VALID, "labels": {"Team": "ml"}}, "not a Google Cloud label"),
        ({**VALID, "env": {"DB_PASSWORD": "x"}}, "Secret Manager"),
        ({**VALID, "timeout_seconds": 0}, "timeout_seconds must be positive"),
        ({**VALID, "service_account": "trainer"}, "not a service account email"),
    ]

    @pytest.fixture
    def conformance_run_params(self, vertex_params):
        return vertex_params

    @pytest.fixture
    def conformance_stores(self, stores):
        return stores


def test_the_seed_s_single_gpu_backend_is_one_t4():
    backend = SingleGPUTrainingGCAIPBackend(**VALID)
    assert (backend.machine_type, backend.accelerator_type, backend.accelerator_count) == (
        "n1-standard-8",
        "NVIDIA_TESLA_T4",
        1,
    )
    with pytest.raises(Exception, match="one machine with one GPU"):
        SingleGPUTrainingGCAIPBackend(**VALID, accelerator_count=2)
