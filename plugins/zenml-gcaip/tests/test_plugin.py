from zenml_core.testing.conformance import PluginConformance


class TestPluginDistribution(PluginConformance):
    distribution = "zenml-gcaip"
    backends: dict[str, list[str]] = {}
