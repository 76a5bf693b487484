"""Torque Pro's "upload to web server": its `k…` keys mapped onto our PIDs.

Torque names a value by `k` and the mode-01 PID in lower-case hex without leading zeros (`kc`
is 0x0C, RPM), or a Torque-specific `kff…` id for GPS and phone sensors. Torque sends no
sequence number, so one is made from the request's time and the PID: a request sent again
stores nothing twice.
"""

import time
from collections.abc import Mapping

from prometheus_client import Counter
from pydantic import ValidationError

from obd2_protocol import MAX_BATCH_SAMPLES, Sample

_MODE01 = {
    0x04: "ENGINE_LOAD",
    0x05: "COOLANT_TEMP",
    0x06: "SHORT_FUEL_TRIM_1",
    0x07: "LONG_FUEL_TRIM_1",
    0x08: "SHORT_FUEL_TRIM_2",
    0x09: "LONG_FUEL_TRIM_2",
    0x0A: "FUEL_PRESSURE",
    0x0B: "INTAKE_PRESSURE",
    0x0C: "RPM",
    0x0D: "SPEED",
    0x0E: "TIMING_ADVANCE",
    0x0F: "INTAKE_TEMP",
    0x10: "MAF",
    0x11: "THROTTLE_POS",
    0x1F: "RUN_TIME",
    0x21: "DISTANCE_W_MIL",
    0x22: "FUEL_RAIL_PRESSURE_VAC",
    0x23: "FUEL_RAIL_PRESSURE_DIRECT",
    0x2C: "COMMANDED_EGR",
    0x2D: "EGR_ERROR",
    0x2E: "EVAPORATIVE_PURGE",
    0x2F: "FUEL_LEVEL",
    0x30: "WARMUPS_SINCE_DTC_CLEAR",
    0x31: "DISTANCE_SINCE_DTC_CLEAR",
    0x33: "BAROMETRIC_PRESSURE",
    0x3C: "CATALYST_TEMP_B1S1",
    0x3D: "CATALYST_TEMP_B2S1",
    0x3E: "CATALYST_TEMP_B1S2",
    0x3F: "CATALYST_TEMP_B2S2",
    0x42: "CONTROL_MODULE_VOLTAGE",
    0x43: "ABSOLUTE_LOAD",
    0x44: "COMMANDED_EQUIV_RATIO",
    0x45: "RELATIVE_THROTTLE_POS",
    0x46: "AMBIANT_AIR_TEMP",
    0x47: "THROTTLE_POS_B",
    0x48: "THROTTLE_POS_C",
    0x49: "ACCELERATOR_POS_D",
    0x4A: "ACCELERATOR_POS_E",
    0x4B: "ACCELERATOR_POS_F",
    0x4C: "THROTTLE_ACTUATOR",
    0x4D: "RUN_TIME_MIL",
    0x4E: "TIME_SINCE_DTC_CLEARED",
    0x52: "ETHANOL_PERCENT",
    0x59: "FUEL_RAIL_PRESSURE_ABS",
    0x5A: "RELATIVE_ACCEL_POS",
    0x5B: "HYBRID_BATTERY_REMAINING",
    0x5C: "OIL_TEMP",
    0x5D: "FUEL_INJECT_TIMING",
    0x5E: "FUEL_RATE",
    0xA6: "ODOMETER",
}
_TORQUE = {
    0xFF1001: "GPS_SPEED",
    0xFF1005: "GPS_LON",
    0xFF1006: "GPS_LAT",
    0xFF1007: "GPS_BEARING",
    0xFF1010: "GPS_ALT",
    0xFF1239: "GPS_ACCURACY",
    0xFF1238: "ELM_VOLTAGE",
}
TORQUE_PIDS: dict[int, str] = {**_MODE01, **_TORQUE}
# A stable small number per PID, folded into the sequence number.
_SLOT = {pid: slot for slot, pid in enumerate(sorted(TORQUE_PIDS))}
_SLOTS = 128
assert len(_SLOT) <= _SLOTS


# Torque retries an upload until it is answered "OK!", so a value the wire refuses cannot be
# refused with the request (it would come back forever): it is skipped, and counted here.
SKIPPED_VALUES = Counter(
    "obd2_torque_values_skipped_total",
    "Values of known PIDs in Torque uploads that were not stored: not_a_number (text that is no "
    "number), out_of_range (NaN, infinite or beyond the wire's bound), repeated (the same PID "
    "twice in one upload)",
    ["reason"],
)
for _reason in ("not_a_number", "out_of_range", "repeated"):
    SKIPPED_VALUES.labels(_reason)  # exposed at 0 from the start, so a rate can be taken


class TorqueRequestError(Exception):
    pass


def samples_from_query(fields: Mapping[str, str], now_ms: int | None = None) -> list[Sample]:
    """The samples in one Torque request. Keys we do not know are skipped (Torque also sends
    units, names and profile data we do not store); values of known PIDs that the wire's
    ``Sample`` refuses are skipped and counted in ``SKIPPED_VALUES``."""
    raw_time = fields.get("time")
    if raw_time is None:
        ts = now_ms if now_ms is not None else int(time.time() * 1000)
    else:
        try:
            ts = int(raw_time)
        except ValueError as exc:
            raise TorqueRequestError(f"time must be epoch milliseconds, got {raw_time!r}") from exc
    samples: list[Sample] = []
    taken: set[int] = set()
    for key, raw in fields.items():
        if len(key) < 2 or key[0] != "k":
            continue
        try:
            pid_number = int(key[1:], 16)
        except ValueError:
            continue
        name = TORQUE_PIDS.get(pid_number)
        if name is None:
            continue
        try:
            value = float(raw)
        except ValueError:
            SKIPPED_VALUES.labels("not_a_number").inc()
            continue
        if pid_number in taken:  # "kc" and "k0c": one seq cannot hold two readings
            SKIPPED_VALUES.labels("repeated").inc()
            continue
        try:
            sample = Sample(seq=ts * _SLOTS + _SLOT[pid_number], ts=ts, pid=name, value=value)
        except ValidationError as exc:
            if any(error["loc"] != ("value",) for error in exc.errors()):
                raise  # the request's time: the whole upload is refused
            SKIPPED_VALUES.labels("out_of_range").inc()
            continue
        taken.add(pid_number)
        samples.append(sample)
        if len(samples) >= MAX_BATCH_SAMPLES:
            break
    return samples
