"""Runs every ``bench/*_bench.py`` module, prints one table and writes bench/results/<name>.json.

    .venv/bin/python bench/run.py              # full run
    .venv/bin/python bench/run.py --short      # quick run (smaller data, shorter windows)
    .venv/bin/python bench/run.py ingest live  # only these benchmarks (module name minus _bench)

The contract a benchmark module keeps is in bench/README.md.
"""

import argparse
import importlib
import json
import os
import platform
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# `python bench/run.py` has bench/ on its path (the script's own directory): the benchmark
# modules and their harness import by name.
from harness import Result

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"


def discover() -> list[str]:
    # bridge_bench.py and web_bench.py are scripts of their own (a car emulator, a browser):
    # only modules that keep the run(short) contract are run from here.
    return sorted(
        p.stem.removesuffix("_bench")
        for p in BENCH_DIR.glob("*_bench.py")
        if "\ndef run(short: bool)" in p.read_text()
    )


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def _cell(result: Result) -> tuple[str, str, str, str, str, str]:
    value = result.value
    shown = f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}" if value else "0"
    verdict = {True: "pass", False: "FAIL", None: "-"}[result.passed]
    target = "" if result.target is None else str(result.target)
    return result.benchmark, result.figure, shown, result.unit, target, verdict


def table(results: list[Result]) -> str:
    header = ("benchmark", "figure", "value", "unit", "target", "pass/fail")
    rows = [header, *(_cell(r) for r in results)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    right = {2}

    def line(row: tuple[str, ...]) -> str:
        cells = [
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        return "  ".join(cells).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), rule, *(line(r) for r in rows[1:])])


def write_json(
    name: str,
    short: bool,
    started: datetime,
    seconds: float,
    results: list[Result],
    error: str | None,
) -> Path:
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    document = {
        "benchmark": name,
        "mode": "short" if short else "full",
        "started": started.isoformat(timespec="seconds"),
        "seconds": round(seconds, 1),
        "machine": machine(),
        "error": error,
        "results": [r.as_json() for r in results],
    }
    path.write_text(json.dumps(document, indent=2) + "\n")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--short", action="store_true", help="quick run: less data, shorter windows"
    )
    parser.add_argument("names", nargs="*", help="benchmarks to run (default: all)")
    args = parser.parse_args(argv)
    available = discover()
    unknown = sorted(set(args.names) - set(available))
    if unknown:
        parser.error(
            f"unknown benchmark(s) {', '.join(unknown)}; available: {', '.join(available)}"
        )
    names = args.names or available
    all_results: list[Result] = []
    failed_to_run: list[str] = []
    for name in names:
        print(f"== {name} ({'short' if args.short else 'full'})", file=sys.stderr, flush=True)
        started = datetime.now(UTC)
        clock = time.monotonic()
        results: list[Result] = []
        error = None
        try:
            module = importlib.import_module(f"{name}_bench")
            results = list(module.run(args.short))
        except Exception:
            error = traceback.format_exc()
            print(error, file=sys.stderr)
            failed_to_run.append(name)
        seconds = time.monotonic() - clock
        path = write_json(name, args.short, started, seconds, results, error)
        print(
            f"   {len(results)} figures in {seconds:.0f} s → {path.relative_to(BENCH_DIR.parent)}",
            file=sys.stderr,
        )
        all_results.extend(results)
    print()
    print(table(all_results))
    if failed_to_run:
        print(f"\nbenchmarks that did not finish: {', '.join(failed_to_run)}")
    missed = [r for r in all_results if r.passed is False]
    if missed:
        print(f"\n{len(missed)} figure(s) missed their target")
    # Missing a target is a finding, not a crash: exit 1 only when a benchmark could not run.
    return 1 if failed_to_run else 0


if __name__ == "__main__":
    raise SystemExit(main())
