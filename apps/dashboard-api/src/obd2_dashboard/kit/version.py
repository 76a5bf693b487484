import subprocess
from functools import cache
from pathlib import Path

from obd2_dashboard import __version__


@cache
def git_sha(explicit: str | None = None) -> str:
    """The release's commit: set by the deploy (GIT_SHA or a REVISION file), else asked of git."""
    if explicit:
        return explicit
    here = Path(__file__).resolve()
    for parent in here.parents:
        revision = parent / "REVISION"
        if revision.is_file():
            return revision.read_text().strip()[:40] or "unknown"
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=here.parent,
            capture_output=True,
            text=True,
            timeout=2,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() or "unknown"


VERSION = __version__
