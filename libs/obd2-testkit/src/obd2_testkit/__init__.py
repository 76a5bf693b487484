"""What every suite and benchmark in this repository shares: loopback ports, the rules every test
keeps (``plugin``), the whole-stack harness (``stack``), the install guide's machine (``vm``,
``guide``). A workspace package of its own (``libs/obd2-testkit``), installed in the development
environment only: importable from any suite and from ``bench/`` without path edits.
"""

from pathlib import Path

# The repository this checkout is (the package is installed from it, editable, by uv's
# workspace): libs/obd2-testkit/src/obd2_testkit/ is four levels below it.
REPO = Path(__file__).resolve().parents[4]
