import subprocess
import sys

# In a process of its own: frozen objects are never collected, which the test process's own
# garbage should not be.
_PROBE = """
import gc
from obd2_dashboard.app import create_app
from obd2_dashboard.kit.heap import YOUNG_THRESHOLD, freeze_startup_heap
from obd2_dashboard.settings import Settings

app = create_app(Settings(SESSION_SECRET="x" * 40, DATABASE_URL="sqlite://", REDIS_URL=None))
freeze_startup_heap()
print(gc.get_freeze_count(), gc.get_threshold()[0] == YOUNG_THRESHOLD, len(gc.get_objects()))
"""


def test_the_startup_heap_is_out_of_the_collectors_sight() -> None:
    probe = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, check=True, timeout=60
    )
    frozen, threshold_set, tracked = probe.stdout.split()
    assert threshold_set == "True"
    # FastAPI, pydantic and SQLAlchemy leave far more long-lived objects than anything tracked.
    assert int(frozen) > 100_000
    assert int(tracked) < int(frozen) // 10
