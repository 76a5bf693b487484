"""The web UI's copy of the PID table matches obd2_protocol's, name, unit and description."""

import re

from obd2_dashboard.web.endpoints import REPO_WEB
from obd2_protocol import PIDS

ROW = re.compile(r'^\s*\["([A-Z0-9_]+)", "([^"]*)", "([^"]*)"\],$', re.MULTILINE)


def test_web_pid_table_matches_the_protocol() -> None:
    source = (REPO_WEB / "src" / "pids.ts").read_text()
    rows = ROW.findall(source)
    assert rows, "no PID rows found in apps/web/src/pids.ts"
    web = {name: (unit, description) for name, unit, description in rows}
    protocol = {p.name: (p.unit, p.description) for p in PIDS.values()}
    assert web == protocol
