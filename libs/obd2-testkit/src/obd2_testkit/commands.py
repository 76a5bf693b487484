"""The product's commands as the tests and benchmarks run them: from this environment's bin/."""

import sys
from pathlib import Path

VENV_BIN = Path(sys.executable).parent
DASHBOARD_CLI = str(VENV_BIN / "obd2-dashboard")
BRIDGE_CLI = str(VENV_BIN / "obd2-bridge")
