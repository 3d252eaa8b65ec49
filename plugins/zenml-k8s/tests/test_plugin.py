from zenml_core.testing.conformance import PluginConformance


class TestPluginDistribution(PluginConformance):
    distribution = "zenml-k8s"
    backends = {"orchestrator": ["kubernetes"]}
