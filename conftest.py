"""The rules every suite in this repository keeps (``tests/testkit/plugin.py``)."""

pytest_plugins = ["testkit.plugin"]
