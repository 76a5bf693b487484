"""Prometheus exposition that stays right when the API runs several worker processes.

With ``PROMETHEUS_MULTIPROC_DIR`` set, every process writes its counters and histograms to files
in that directory and ``/metrics`` (whichever worker answers) sums them all; without it, the
process's own registry is the whole truth. The variable must be set before a recording process
imports ``prometheus_client``: the systemd unit sets it, and ``serve --workers N`` sets it for the
workers it spawns.
"""

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def multiprocess_dir() -> Path | None:
    value = os.environ.get(MULTIPROC_ENV)
    return Path(value) if value else None


def prepare_multiprocess_dir(path: Path) -> Path:
    """Creates the directory and empties it: a dead process's files would be summed forever.

    Call it once per server start, before any worker records a value.
    """
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink(missing_ok=True)
    return path.resolve()


class _Families:
    """A collector of metric families computed for one scrape."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self._families = list(families)

    def collect(self) -> Iterator[Metric]:
        yield from self._families


def render(families: Iterable[Metric] = ()) -> bytes:
    """The text exposition: recorded metrics (of every worker) and the given scrape-time ones."""
    directory = multiprocess_dir()
    if directory is None:
        recorded = REGISTRY
    else:
        recorded = CollectorRegistry()
        MultiProcessCollector(recorded, path=str(directory))  # type: ignore[no-untyped-call]
    scrape_time = CollectorRegistry(auto_describe=True)
    scrape_time.register(_Families(families))
    return generate_latest(recorded) + generate_latest(scrape_time)
