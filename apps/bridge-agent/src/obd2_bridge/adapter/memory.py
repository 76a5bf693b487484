# SPDX-License-Identifier: GPL-2.0-or-later
"""What the agent learned about each adapter, kept across reconnects and agent restarts.

A cheap clone that refuses the response-count digit, ``ATST`` or ``ATMA`` refuses it every time:
asking again on every connect costs a ``?`` and a retry each time. The file is small JSON next to
the spool, keyed by the adapter's identity (its ``ATI`` answer and where it is plugged in). It is
a cache: a file that cannot be read or parsed is started afresh, and one that cannot be written
only costs the next connect a few questions, so neither ever stops the agent.
"""

import json
import logging
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

FORMAT_VERSION = 1


@dataclass(slots=True)
class AdapterTraits:
    """``None``: not known yet; ``True``/``False``: seen to work / refused."""

    count_hints_multi: bool | None = None
    count_hints_single: bool | None = None
    timeout_tuning: bool | None = None
    monitor: bool | None = None
    # The ATST value (units of 4 ms) last tuned and verified, for the status and the curious.
    timeout_units: int | None = None

    @classmethod
    def from_json(cls, data: object) -> "AdapterTraits":
        if not isinstance(data, dict):
            return cls()
        values: dict[str, Any] = {}
        for f in fields(cls):
            value = data.get(f.name)
            if f.name == "timeout_units":
                ok = isinstance(value, int) and not isinstance(value, bool) and 0 < value < 256
            else:
                ok = isinstance(value, bool)
            if ok:
                values[f.name] = value
        return cls(**values)


class AdapterMemory:
    """Blocking, used from the reader thread only; ``path`` ``None`` remembers in memory only."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._adapters: dict[str, AdapterTraits] = {}
        if path is not None:
            self._adapters = _read(path)

    def traits(self, key: str) -> AdapterTraits:
        """This adapter's traits (a copy: change it, then ``remember``)."""
        known = self._adapters.get(key)
        return AdapterTraits(**asdict(known)) if known is not None else AdapterTraits()

    def remember(self, key: str, traits: AdapterTraits) -> None:
        if self._adapters.get(key) == traits:
            return
        self._adapters[key] = AdapterTraits(**asdict(traits))
        if self.path is None:
            return
        body = {
            "version": FORMAT_VERSION,
            "adapters": {k: asdict(v) for k, v in sorted(self._adapters.items())},
        }
        partial = self.path.with_name(self.path.name + ".partial")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            partial.write_text(json.dumps(body, indent=1) + "\n")
            os.replace(partial, self.path)  # never a half-written file under the real name
        except OSError as exc:
            log.warning("cannot write what was learned about the adapter to %s: %s", self.path, exc)


def _read(path: Path) -> dict[str, AdapterTraits]:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        log.warning("cannot read %s (%s): learning the adapter afresh", path, exc)
        return {}
    try:
        body = json.loads(text)
    except ValueError:
        log.warning("%s is not valid JSON: learning the adapter afresh", path)
        return {}
    adapters = body.get("adapters") if isinstance(body, dict) else None
    if not isinstance(adapters, dict) or body.get("version") != FORMAT_VERSION:
        log.warning("%s is not an adapter memory this agent knows: learning afresh", path)
        return {}
    return {str(k): AdapterTraits.from_json(v) for k, v in adapters.items()}
