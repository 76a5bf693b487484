# SPDX-License-Identifier: GPL-2.0-or-later
"""``obd2-bridge scan``: what the adapter and the car say about themselves."""

from typing import Any

from obd2_bridge.adapter import ObdAdapter


def scan(
    port: str, *, baudrate: int | None, protocol: str | None, timeout_s: float
) -> dict[str, Any]:
    adapter = ObdAdapter(port, baudrate=baudrate, protocol=protocol, timeout_s=timeout_s)
    adapter.connect()
    try:
        dtcs = adapter.read_dtcs()
        return {
            "port": port,
            "protocol": adapter.protocol_name,
            "protocol_id": adapter.protocol_id,
            "multi_pid": adapter.multi_pid,
            "vin": adapter.read_vin(),
            "voltage": adapter.voltage(),
            "supported_pids": sorted(adapter.supported),
            "dtcs": {
                "stored": [{"code": c, "description": d} for c, d in dtcs.stored],
                "pending": [{"code": c, "description": d} for c, d in dtcs.pending],
                "permanent": [{"code": c, "description": d} for c, d in dtcs.permanent],
                "freeze_dtc": dtcs.freeze_dtc,
                "freeze_frame": dtcs.freeze_frame,
            },
        }
    finally:
        adapter.close()
