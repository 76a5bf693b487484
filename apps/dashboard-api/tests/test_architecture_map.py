"""The one-screen map at the top of doc/architecture.md names modules that exist: a module
moved or renamed without the map following fails here."""

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
ROOTS = (
    REPO / "apps/dashboard-api/src/obd2_dashboard",
    REPO / "apps/bridge-agent/src/obd2_bridge",
    REPO / "apps/web/src",
)


def test_every_module_on_the_map_exists() -> None:
    text = (REPO / "doc/architecture.md").read_text()
    block = text.split("## The map, on one screen", 1)[1].split("```")[1]
    named = set(re.findall(r"[\w/*]+\.(?:py|ts)\b", block))
    assert len(named) >= 10
    missing = sorted(name for name in named if not any(list(root.glob(name)) for root in ROOTS))
    assert missing == []
