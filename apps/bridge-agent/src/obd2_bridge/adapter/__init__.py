# SPDX-License-Identifier: GPL-2.0-or-later
"""The ELM327 adapter: connecting through python-OBD, multi-PID reads, VIN, trouble codes."""

from obd2_bridge.adapter.connection import ObdAdapter
from obd2_bridge.adapter.errors import (
    AdapterError,
    AdapterLostError,
    AdapterStuckError,
    AdapterTimeoutError,
    NoAdapterError,
    NoEcuError,
    UnsupportedProtocolError,
)

__all__ = [
    "AdapterError",
    "AdapterLostError",
    "AdapterStuckError",
    "AdapterTimeoutError",
    "NoAdapterError",
    "NoEcuError",
    "ObdAdapter",
    "UnsupportedProtocolError",
]
