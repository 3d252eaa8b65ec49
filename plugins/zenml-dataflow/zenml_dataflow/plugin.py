"""Entry point of zenml-dataflow: the hooks zenml-core calls to find this plugin's backends.

Kept light: backend classes are imported inside the hooks, and their cloud SDKs inside the
methods that use them. The backends themselves land with their issue; until then this plugin
registers nothing, and `zenml plugins` shows it so.
"""
