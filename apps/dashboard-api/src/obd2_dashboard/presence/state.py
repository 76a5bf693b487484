"""Each vehicle's and each device's state, computed in this one place from stored times.

Pure: the caller passes the row's times and ``now``, so the thresholds are testable to the
millisecond. Every state carries ``since``, the moment it began. Transitions that only the
passing of time makes (live → stale → offline, heard → silent) are derived from the newest
upload or report plus the threshold; those an upload or a report makes (a new live stretch, a
new adapter state) are stored by the repository in the same UPDATE that records the upload or
report (``vehicles.live_since``, ``devices.flowing_since``, ``devices.adapter_state_since``),
so they survive restarts.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

VehicleState = Literal["never_seen", "live", "stale", "offline"]
DeviceState = Literal["connected", "adapter_disconnected", "engine_off", "silent", "revoked"]

# The agent's adapter states (obd2_protocol.AdapterState) that mean the engine is not running.
_ENGINE_OFF = frozenset({"engine_off", "low_voltage"})


@dataclass(frozen=True, slots=True)
class Thresholds:
    """How long a vehicle stays live and stale, and a device is heard, without news."""

    vehicle_stale_after: timedelta = timedelta(seconds=15)
    vehicle_offline_after: timedelta = timedelta(seconds=300)
    device_silent_after: timedelta = timedelta(seconds=60)

    @classmethod
    def of(
        cls, stale_after_s: float, offline_after_s: float, silent_after_s: float
    ) -> "Thresholds":
        return cls(
            vehicle_stale_after=timedelta(seconds=stale_after_s),
            vehicle_offline_after=timedelta(seconds=offline_after_s),
            device_silent_after=timedelta(seconds=silent_after_s),
        )


@dataclass(frozen=True, slots=True)
class VehicleStateAt:
    state: VehicleState
    since: datetime


@dataclass(frozen=True, slots=True)
class DeviceStateAt:
    state: DeviceState
    since: datetime


def vehicle_state(
    *,
    created_at: datetime,
    last_seen_at: datetime | None,
    live_since: datetime | None,
    now: datetime,
    thresholds: Thresholds,
) -> VehicleStateAt:
    """From the server time of the vehicle's newest live upload (``last_seen_at``; backfill and
    imports do not count: they say nothing about the car now).

    never_seen: no live upload ever (since the vehicle was created); live: one within
    ``vehicle_stale_after``; stale: within ``vehicle_offline_after``; offline: older.
    """
    if last_seen_at is None:
        return VehicleStateAt("never_seen", created_at)
    age = now - last_seen_at
    if age < thresholds.vehicle_stale_after:
        # Rows from before live_since existed: the stretch is known from its newest upload on.
        return VehicleStateAt("live", live_since if live_since is not None else last_seen_at)
    if age < thresholds.vehicle_offline_after:
        return VehicleStateAt("stale", last_seen_at + thresholds.vehicle_stale_after)
    return VehicleStateAt("offline", last_seen_at + thresholds.vehicle_offline_after)


def device_state(
    *,
    created_at: datetime,
    revoked_at: datetime | None,
    last_seen_at: datetime | None,
    last_upload_at: datetime | None,
    flowing_since: datetime | None,
    adapter_state: str | None,
    adapter_state_since: datetime | None,
    now: datetime,
    thresholds: Thresholds,
) -> DeviceStateAt:
    """In this order, the first that holds:

    revoked: its token was revoked. silent: nothing from it (no upload, no status report)
    within ``device_silent_after``, or never. engine_off: its newest status report says the
    engine is off (or the battery too low to poll). adapter_disconnected: its newest status
    report says the adapter is not talking to the car (connecting, no adapter, no ECU, timeout,
    unsupported protocol). connected: an upload within ``device_silent_after``. Otherwise
    silent: the agent reports in but no data has flowed for that long. A device that sends no
    status reports (Torque Pro, a phone) is connected or silent by its uploads alone.
    """
    silent_after = thresholds.device_silent_after
    if revoked_at is not None:
        return DeviceStateAt("revoked", revoked_at)
    if last_seen_at is None:
        return DeviceStateAt("silent", created_at)
    if now - last_seen_at >= silent_after:
        return DeviceStateAt("silent", last_seen_at + silent_after)
    reported_since = adapter_state_since if adapter_state_since is not None else last_seen_at
    if adapter_state in _ENGINE_OFF:
        return DeviceStateAt("engine_off", reported_since)
    if adapter_state is not None and adapter_state != "connected":
        return DeviceStateAt("adapter_disconnected", reported_since)
    if last_upload_at is not None and now - last_upload_at < silent_after:
        flowing = flowing_since if flowing_since is not None else last_upload_at
        since = max(flowing, reported_since) if adapter_state is not None else flowing
        return DeviceStateAt("connected", since)
    quiet_since = last_upload_at + silent_after if last_upload_at is not None else created_at
    since = max(quiet_since, reported_since) if adapter_state is not None else quiet_since
    return DeviceStateAt("silent", since)
