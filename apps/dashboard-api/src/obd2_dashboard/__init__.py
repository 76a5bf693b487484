"""obd2-dashboard server."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("obd2-dashboard")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0"
