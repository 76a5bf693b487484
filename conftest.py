"""The rules every suite in this repository keeps (``obd2_testkit.plugin``)."""

pytest_plugins = ["obd2_testkit.plugin"]
