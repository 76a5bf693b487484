"""bench/stack_bench.py in its short mode: it runs, reports every figure, and loses nothing.

Speeds are not judged here (they depend on the machine): that is the benchmark's job, and
doc/benchmarks.md has the figures of a full run.
"""

import importlib
import math
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("stack")]

BENCH = Path(__file__).resolve().parents[2] / "bench"


def test_short_soak_and_scale_report_every_figure_and_lose_nothing() -> None:
    sys.path.insert(0, str(BENCH))
    try:
        stack_bench = importlib.import_module("stack_bench")
        results = stack_bench.run(short=True)
    finally:
        sys.path.remove(str(BENCH))
    figures = {r.figure: r for r in results}
    expected = [
        "soak: ingest answered 200",
        "soak: ingest requests that failed",
        "soak: ingest request through nginx, p99",
        "soak: live p99, 10 s 1",
        "soak: live p99, 10 s 2",
        "soak: live p99, whole soak",
        "soak: RSS growth, api 1",
        "soak: RSS growth, api 2",
        "soak: RSS growth, worker 1",
        "soak: RSS growth, worker 2",
        "soak: RSS growth, nginx master",
        "soak: RSS growth, redis",
        "soak: longest live stream",
        "soak: outbox backlog at the end",
        "soak: CPU of the stack's processes",
        "soak: acknowledged samples not stored",
        "soak: samples a viewer never got",
        "soak: deliveries out of order or after a hole",
        "scale: ingest, 1 API process behind nginx",
        "scale: ingest, 2 API processes behind nginx",
        "scale: 2 processes / 1",
    ]
    missing = [name for name in expected if name not in figures]
    assert not missing, f"figures missing: {missing}"
    for result in results:
        assert result.benchmark == "stack"
        assert result.unit
        assert math.isfinite(result.value), result
        assert result.as_json()["figure"] == result.figure
    assert figures["soak: ingest answered 200"].value > 0
    assert figures["scale: ingest, 1 API process behind nginx"].value > 0
    assert figures["soak: ingest requests that failed"].value == 0
    assert figures["soak: acknowledged samples not stored"].value == 0
    assert figures["soak: samples a viewer never got"].value == 0
    assert figures["soak: deliveries out of order or after a hole"].value == 0
