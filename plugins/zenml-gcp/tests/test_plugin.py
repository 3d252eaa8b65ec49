from zenml_core.testing.conformance import PluginConformance


class TestPluginDistribution(PluginConformance):
    distribution = "zenml-gcp"
    backends: dict[str, list[str]] = {"orchestrator": ["gcp"], "artifact_store": ["gs"]}
