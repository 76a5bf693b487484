"""Torque Pro's "upload to web server": every numeric value it sends, kept.

One upload is a query string (or a form body) of ``k<hex id>=value`` pairs with ``time`` (epoch
ms), ``session``, ``id`` and ``eml``; other uploads carry the names and units of the ids
(``userFullName…``, ``userShortName…``, ``userUnit…``, ``defaultUnit…``), the vehicle's profile
(``profileName``, ``profileFuelType``, ``profileWeight``, ``profileVe``) or a notice
(``notice``, ``noticeClass``). What each id is comes from ``torque.keys``.

Torque sends no sequence number, so one is made from the upload's time and the id: an upload
sent again stores nothing twice. The ids of our PID table keep the numbers they always had
(``time * 128 + slot``); any other id gets ``2**52 + time * 1024 + slot``, its slot a hash of the
id (probing past ids of the same upload that took it), so the two ranges never meet before the
year 2109.
"""

import logging
import math
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncSession

from obd2_dashboard.events import service as events
from obd2_dashboard.models import FuelType
from obd2_dashboard.pids import service as pids
from obd2_dashboard.pids.definitions import TORQUE_SESSION, PidNames
from obd2_dashboard.telemetry.committer import IngestCommitter
from obd2_dashboard.torque import keys
from obd2_dashboard.vehicles.service import VehicleProfile, fill_unset_settings
from obd2_protocol import MAX_ABS_VALUE
from obd2_protocol.wire import MAX_SEQ, MAX_TS_MS, MIN_TS_MS

log = logging.getLogger("obd2_dashboard.torque")

# What one upload may be: Torque's biggest, the names of every sensor a user logs, is about
# 100 bytes and 3 fields per sensor (13 KB and 438 fields for 147 sensors).
MAX_UPLOAD_BYTES = 512 * 1024
MAX_FIELDS = 4000
MAX_FIELD_CHARS = 1024
MAX_VALUE_KEYS = 1024

# Torque's "no value": a sensor it could not read is sent as NaN, ±Infinity or ±Float.MAX_VALUE
# (3.4028235E38, sometimes printed as 3.4028E38).
_FLOAT32_MAX = 3.4028235e38

# The ids of our table, in the order their slots were given; those added later go after.
_LEGACY_IDS = (
    *(0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x0E, 0x0F, 0x10, 0x11),
    *(0x1F, 0x21, 0x22, 0x23, 0x2C, 0x2D, 0x2E, 0x2F, 0x30, 0x31, 0x33, 0x3C, 0x3D, 0x3E),
    *(0x3F, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0x4A, 0x4B, 0x4C, 0x4D, 0x4E),
    *(0x52, 0x59, 0x5A, 0x5B, 0x5C, 0x5D, 0x5E, 0xA6),
    *(0xFF1001, 0xFF1005, 0xFF1006, 0xFF1007, 0xFF1010, 0xFF1238, 0xFF1239),
)
_LATER_IDS = (0x32, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58)
_SLOT = {key_id: slot for slot, key_id in enumerate((*_LEGACY_IDS, *_LATER_IDS))}
_SESSION_SLOT = len(_SLOT)
_SLOTS = 128
assert set(_SLOT) == set(keys.STANDARD)
assert _SESSION_SLOT < _SLOTS
_OTHER_BASE = 2**52
_OTHER_SLOTS = 1024
assert MAX_VALUE_KEYS <= _OTHER_SLOTS

# Torque retries an upload until it is answered "OK!", so a value that cannot be stored cannot
# be refused with the upload (it would come back for ever): it is skipped, and counted here.
SKIPPED_VALUES = Counter(
    "obd2_torque_values_skipped_total",
    "Values of Torque uploads that were not stored: no_value (Torque's NaN, ±Infinity or "
    "±3.4028E38 for a sensor it could not read), out_of_range (a finite value beyond the "
    "wire's bound of 1e12), not_a_number (text that is no number), repeated (one id "
    "twice in an upload with different values), bad_profile (a profile field that is no "
    "plausible setting)",
    ["reason"],
)
for _reason in ("no_value", "out_of_range", "not_a_number", "repeated", "bad_profile"):
    SKIPPED_VALUES.labels(_reason)  # exposed at 0 from the start, so a rate can be taken

REFUSED_UPLOADS = Counter(
    "obd2_torque_uploads_refused_total",
    "Torque uploads refused whole: too_large (over 512 KiB), too_many_fields (over 4000), "
    "field_too_long (a name or value over 1024 characters), too_many_values (over 1024 k… "
    "keys), bad_time (a time that is no epoch ms)",
    ["reason"],
)
for _reason in ("too_large", "too_many_fields", "field_too_long", "too_many_values", "bad_time"):
    REFUSED_UPLOADS.labels(_reason)


class TorqueRequestError(Exception):
    """An upload refused whole; ``status`` is the HTTP status to answer."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


@dataclass(frozen=True, slots=True)
class TorqueSample:
    """A sample as the committer stores it (``obd2_protocol.SampleFields``)."""

    seq: int
    ts: int
    pid: str
    value: float


@dataclass(slots=True)
class TorqueUpload:
    ts: int
    samples: list[TorqueSample] = field(default_factory=list)
    # Names and units of ids the server has no definition of (custom PIDs).
    definitions: list[PidNames] = field(default_factory=list)
    profile: VehicleProfile | None = None
    notice: tuple[str, str] | None = None  # (message, class)


def parse_fields(raw: str) -> list[tuple[str, str]]:
    """The fields of a query string or form body, within the upload's limits."""
    if len(raw) > MAX_UPLOAD_BYTES:
        raise TorqueRequestError(
            413, "too_large", f"the upload is larger than {MAX_UPLOAD_BYTES} bytes"
        )
    try:
        pairs = parse_qsl(raw, keep_blank_values=True, max_num_fields=MAX_FIELDS)
    except ValueError as exc:
        raise TorqueRequestError(
            422, "too_many_fields", f"an upload has at most {MAX_FIELDS} fields"
        ) from exc
    for key, value in pairs:
        if len(key) > MAX_FIELD_CHARS or len(value) > MAX_FIELD_CHARS:
            raise TorqueRequestError(
                422,
                "field_too_long",
                f"field {key[:40]!r} is longer than {MAX_FIELD_CHARS} characters",
            )
    return pairs


def _value_key(key: str) -> int | None:
    if len(key) < 2 or key[0] != "k":
        return None
    return keys.key_id_of(key[1:])


def _skip_reason(value: float) -> str | None:
    if math.isnan(value) or math.isinf(value):
        return "no_value"
    magnitude = abs(value)
    if math.isclose(magnitude, _FLOAT32_MAX, rel_tol=1e-4):
        return "no_value"
    if magnitude > MAX_ABS_VALUE:
        return "out_of_range"
    return None


def _session_value(session: str) -> float:
    """The session as a number a sample holds: Torque's sessions are the epoch ms they
    started, kept as epoch seconds (within the wire's bound); anything else, its CRC-32."""
    if session.isdigit() and MIN_TS_MS <= int(session) <= MAX_TS_MS:
        return int(session) / 1000
    return float(zlib.crc32(session.encode()))


def _other_slots(key_ids: Sequence[int]) -> dict[int, int]:
    """A slot for each id outside our table: its hash, or the next free one."""
    taken: dict[int, int] = {}
    used: set[int] = set()
    for key_id in sorted(key_ids):
        slot = zlib.crc32(key_id.to_bytes(4, "big")) % _OTHER_SLOTS
        while slot in used:
            slot = (slot + 1) % _OTHER_SLOTS
        used.add(slot)
        taken[key_id] = slot
    return taken


def _time(fields: dict[str, str], now_ms: int | None) -> int:
    raw = fields.get("time")
    if raw is None:
        return now_ms if now_ms is not None else int(time.time() * 1000)
    try:
        ts = int(raw)
    except ValueError:
        raise TorqueRequestError(
            422, "bad_time", f"time must be epoch milliseconds, got {raw[:40]!r}"
        ) from None
    if not MIN_TS_MS <= ts <= MAX_TS_MS:
        raise TorqueRequestError(
            422, "bad_time", f"time must be epoch milliseconds after 2001-09-09, got {ts}"
        )
    return ts


PROFILE_FIELDS = ("profileName", "profileFuelType", "profileWeight", "profileVe")
# Torque's fuel types that have an air-fuel ratio and density of ours (trips.segmenter): its
# first two, petrol and diesel.
TORQUE_FUEL_TYPES = {0: FuelType.petrol, 1: FuelType.diesel}


def _profile(fields: dict[str, str]) -> VehicleProfile | None:
    if not any(name in fields for name in PROFILE_FIELDS):
        return None

    def number(name: str, low: float, high: float) -> float | None:
        raw = fields.get(name)
        if raw is None or raw == "":
            return None
        try:
            value = float(raw)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and low < value <= high):
            SKIPPED_VALUES.labels("bad_profile").inc()
            return None
        return value

    name = "".join(ch for ch in fields.get("profileName", "") if ch.isprintable()).strip()
    fuel_code = number("profileFuelType", -1, 100)
    fuel = None
    if fuel_code is not None and fuel_code.is_integer():
        fuel = TORQUE_FUEL_TYPES.get(int(fuel_code))
    return VehicleProfile(
        name=name[:100] or None,
        fuel_type=fuel,
        weight_kg=number("profileWeight", 0, 100_000),
        volumetric_efficiency_pct=number("profileVe", 0, 200),
    )


def _definitions(fields: dict[str, str]) -> list[PidNames]:
    """Names and units Torque sends for ids the server has no definition of."""
    found: dict[int, dict[str, str]] = {}
    for prefix in ("userFullName", "userShortName", "defaultUnit", "userUnit"):
        for key, value in fields.items():
            if not key.startswith(prefix):
                continue
            key_id = keys.key_id_of(key[len(prefix) :])
            if key_id is None or key_id in keys.STANDARD or key_id in keys.KEYS:
                continue
            found.setdefault(key_id, {})[prefix] = value
    out: list[PidNames] = []
    for key_id, names in sorted(found.items()):
        # Values arrive in the default unit; the user's unit is only what the phone shows.
        unit = names.get("defaultUnit")
        out.append(
            PidNames(
                keys.pid_name(key_id),
                "torque",
                display_name=names.get("userFullName") or names.get("userShortName"),
                short_name=names.get("userShortName"),
                unit=None if unit is None else keys.canonical_unit(unit),
            )
        )
    return out


def parse_upload(pairs: Sequence[tuple[str, str]], now_ms: int | None = None) -> TorqueUpload:
    """What one upload holds. Values that cannot be stored are skipped and counted in
    ``SKIPPED_VALUES``; an upload over the limits raises ``TorqueRequestError``."""
    fields = dict(pairs)
    value_keys = sum(1 for key, _ in pairs if _value_key(key) is not None)
    if value_keys > MAX_VALUE_KEYS:
        raise TorqueRequestError(
            422, "too_many_values", f"an upload has at most {MAX_VALUE_KEYS} k… values"
        )
    ts = _time(fields, now_ms)
    upload = TorqueUpload(ts=ts)
    values: dict[int, float] = {}
    for key, raw in pairs:
        key_id = _value_key(key)
        if key_id is None:
            continue
        try:
            value = float(raw)
        except ValueError:
            SKIPPED_VALUES.labels("not_a_number").inc()
            continue
        reason = _skip_reason(value)
        if reason is not None:
            SKIPPED_VALUES.labels(reason).inc()
            continue
        earlier = values.get(key_id)
        if earlier is not None:
            # "kc" and "k0c", or one key twice: one seq cannot hold two readings.
            if earlier != value:
                SKIPPED_VALUES.labels("repeated").inc()
            continue
        values[key_id] = value
    others = _other_slots([key_id for key_id in values if key_id not in _SLOT])
    for key_id, value in values.items():
        slot = _SLOT.get(key_id)
        if slot is not None:
            seq = ts * _SLOTS + slot
        else:
            seq = _OTHER_BASE + ts * _OTHER_SLOTS + others[key_id]
        upload.samples.append(TorqueSample(seq, ts, keys.pid_name(key_id), value))
    session = fields.get("session")
    if upload.samples and session:
        upload.samples.append(
            TorqueSample(ts * _SLOTS + _SESSION_SLOT, ts, TORQUE_SESSION, _session_value(session))
        )
    assert all(sample.seq <= MAX_SEQ for sample in upload.samples)
    upload.definitions = _definitions(fields)
    upload.profile = _profile(fields)
    notice = fields.get("notice")
    if notice:
        upload.notice = (notice, fields.get("noticeClass", ""))
    return upload


async def store_upload(
    session: AsyncSession,
    committer: IngestCommitter,
    *,
    token: str,
    device_id: int,
    vehicle_id: int,
    upload: TorqueUpload,
) -> None:
    """Keeps what the upload holds: the samples through the committer (durable when it
    returns), then names, profile and notice in the request's transaction. In that order: on
    SQLite the request must not hold the write lock while the committer waits for it."""
    if upload.samples:
        await committer.store(token, upload.samples, transport="torque")
    if upload.definitions:
        await pids.define(session, vehicle_id, upload.definitions)
    if upload.profile is not None:
        filled = await fill_unset_settings(session, vehicle_id, upload.profile)
        if filled:
            log.info(
                "vehicle settings filled from the Torque profile",
                extra={"vehicle": vehicle_id, "settings": filled},
            )
    if upload.notice is not None:
        message, event_class = upload.notice
        await events.record_notice(
            session,
            vehicle_id=vehicle_id,
            device_id=device_id,
            ts=upload.ts,
            message=message,
            event_class=event_class,
        )
