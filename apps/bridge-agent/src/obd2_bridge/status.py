# SPDX-License-Identifier: GPL-2.0-or-later
"""What the agent knows about itself, shared by the reader thread and the uploader."""

import threading
import time
from collections import deque
from dataclasses import dataclass, field

from obd2_bridge import __version__
from obd2_protocol import MAX_DETAIL, AdapterState, BridgeStatus, is_storable_value


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class AgentState:
    adapter_state: AdapterState = "connecting"
    adapter_detail: str = ""
    protocol: str | None = None
    vin: str | None = None
    battery_voltage: float | None = None
    last_upload_ts: int | None = None
    uploaded: int = 0
    transport: str = "none"
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _recent: deque[tuple[float, int]] = field(default_factory=deque, repr=False)

    def set_adapter(self, state: AdapterState, detail: str = "") -> None:
        with self._lock:
            self.adapter_state = state
            self.adapter_detail = detail

    def count_samples(self, n: int) -> None:
        with self._lock:
            now = time.monotonic()
            self._recent.append((now, n))
            while self._recent and self._recent[0][0] < now - 10.0:
                self._recent.popleft()

    def sample_rate(self) -> float:
        with self._lock:
            now = time.monotonic()
            total = sum(n for t, n in self._recent if t >= now - 10.0)
            return total / 10.0

    def snapshot(self, backlog: int, dropped: int) -> BridgeStatus:
        rate = self.sample_rate()
        with self._lock:
            voltage = self.battery_voltage
            return BridgeStatus(
                ts=now_ms(),
                agent_version=__version__,
                adapter_state=self.adapter_state,
                adapter_detail=self.adapter_detail[:MAX_DETAIL],
                protocol=self.protocol,
                vin=self.vin,
                battery_voltage=voltage if voltage is None or is_storable_value(voltage) else None,
                spool_backlog=backlog,
                spool_dropped=dropped,
                last_upload_ts=self.last_upload_ts,
                sample_rate=round(rate, 2),
            )
