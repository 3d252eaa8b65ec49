pytest_plugins = ["zenml_core.testing.fixtures"]
