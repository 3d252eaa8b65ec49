from zenml_core.testing.conformance import PluginConformance


class TestPluginDistribution(PluginConformance):
    distribution = "zenml-dataflow"
    backends: dict[str, list[str]] = {}
