"""Reading logs written elsewhere into samples: Torque Pro's CSV log, a generic CSV with a time
column (our own export among them) and GPX tracks.

A reader yields ``Reading``s in the stored unit of their PID and counts what it leaves out,
with the reason, so that a summary can say why; nothing it could read is dropped silently.
"""

import csv
import io
import math
import re
import zlib
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

import gpxpy
import gpxpy.gpx

from obd2_dashboard.pids.definitions import is_pid_name
from obd2_dashboard.torque.keys import by_csv_column
from obd2_dashboard.units.service import pid_unit
from obd2_dashboard.units.table import UnitMismatchError, canonical_unit, find_unit
from obd2_protocol.wire import MAX_TS_MS, MIN_TS_MS

# A cell longer than this is no figure: it is skipped, not parsed.
MAX_CELL_CHARS = 64
# Seq = time and a slot of the PID's name: the same reading of the same file, the same seq.
SEQ_SLOTS = 2048

# Names other loggers give the PIDs of our table.
ALIASES: Mapping[str, str] = {
    "ENGINE_RPM": "RPM",
    "VEHICLE_SPEED": "SPEED",
    "COOLANT_TEMPERATURE": "COOLANT_TEMP",
    "ENGINE_COOLANT_TEMP": "COOLANT_TEMP",
    "THROTTLE": "THROTTLE_POS",
    "THROTTLE_POSITION": "THROTTLE_POS",
    "LATITUDE": "GPS_LAT",
    "LAT": "GPS_LAT",
    "LONGITUDE": "GPS_LON",
    "LON": "GPS_LON",
    "LNG": "GPS_LON",
    "ALTITUDE": "GPS_ALT",
}
TIME_COLUMNS = ("ts", "timestamp", "time", "datetime", "date", "device time", "gps time")
_HEADER = re.compile(r"^(?P<name>.*?)\s*\((?P<unit>[^()]*)\)\s*$")
# Torque's "Device Time" (15-Jan-2022 17:12:55.403) and "GPS Time" (Sat Jan 15 17:12:55 GMT 2022).
_TORQUE_TIMES = ("%d-%b-%Y %H:%M:%S.%f", "%d-%b-%Y %H:%M:%S", "%a %b %d %H:%M:%S GMT %Y")
# A GPS Time in another zone's abbreviation (PDT, CET) is left to the Device Time column.


class ImportFormat(StrEnum):
    torque_csv = "torque-csv"
    csv = "csv"
    gpx = "gpx"


class UnreadableLogError(ValueError):
    """The file cannot be imported at all (wrong format, no time): nothing is stored."""


@dataclass(frozen=True, slots=True)
class Reading:
    seq: int
    ts: int
    pid: str
    value: float


@dataclass(slots=True)
class Skips:
    """What a reader left out, by reason."""

    rows: Counter[str] = field(default_factory=Counter)
    values: Counter[str] = field(default_factory=Counter)
    columns: list[str] = field(default_factory=list)
    # PIDs the server has no definition of, as the file names them: (PID, header, stored unit).
    names: list[tuple[str, str, str | None]] = field(default_factory=list)


def seq_of(ts: int, pid: str) -> int:
    return ts * SEQ_SLOTS + zlib.crc32(pid.encode()) % SEQ_SLOTS


def guess_format(head: bytes) -> ImportFormat:
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")[:4096].decode("utf-8", "replace")
    if text.startswith("<?xml") or text.startswith("<gpx"):
        if "<gpx" not in text:
            raise UnreadableLogError("an XML file that is no GPX")
        return ImportFormat.gpx
    first = text.splitlines()[0] if text else ""
    if not first.strip() or not first.isprintable():
        raise UnreadableLogError("neither a CSV file with a header row nor a GPX file")
    if "device time" in first.lower() or "gps time" in first.lower():
        return ImportFormat.torque_csv
    return ImportFormat.csv


def _number(cell: str) -> float | None:
    text = cell.strip()
    if not text or text == "-" or len(text) > MAX_CELL_CHARS:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) and abs(value) < 3.4e38 else None


def parse_time(cell: str) -> int | None:
    """Epoch ms of a time cell: ISO 8601, epoch seconds or ms, or Torque's times (UTC when no
    zone is written)."""
    text = cell.strip()
    if not text or len(text) > MAX_CELL_CHARS:
        return None
    try:
        number = float(text)
    except ValueError:
        number = None
    if number is not None and math.isfinite(number):
        ms = round(number if number >= MIN_TS_MS else number * 1000)
        return ms if MIN_TS_MS <= ms <= MAX_TS_MS else None
    when: datetime | None = None
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        for pattern in _TORQUE_TIMES:
            try:
                when = datetime.strptime(text, pattern)
                break
            except ValueError:
                continue
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    ms = int(when.timestamp() * 1000)
    return ms if MIN_TS_MS <= ms <= MAX_TS_MS else None


@dataclass(frozen=True, slots=True)
class _Column:
    index: int
    pid: str
    unit: str | None  # the unit the column is written in, when it says one


# Metres per second, as Torque's CSV writes the phone's GPS speed; km/h is what it is stored in.
_METRES_PER_SECOND = frozenset({"meters/second", "metres/second", "m/s"})


def _converter(column: _Column) -> tuple[float, float, bool] | None:
    """(scale, offset, inverse) turning the column's figures into the PID's stored unit."""
    if column.unit is None or not column.unit.strip():
        return None
    if column.unit.strip().lower() in _METRES_PER_SECOND:
        return 1 / 3.6, 0.0, False
    found = find_unit(column.unit)
    if found is None:
        return None
    _, conversion = found
    if conversion is None:
        return None
    return conversion.scale, conversion.offset, conversion.inverse


def _stored(value: float, how: tuple[float, float, bool] | None) -> float:
    if how is None:
        return value
    scale, offset, inverse = how
    if inverse:
        return scale / value if value else math.inf
    return (value - offset) / scale


def _unit_problem(column: _Column) -> str | None:
    """Why the column's unit cannot be read as the PID's (unknown, or another quantity)."""
    if column.unit is None or not column.unit.strip():
        return None
    if column.unit.strip().lower() in _METRES_PER_SECOND and pid_unit(column.pid) == "kph":
        return None
    try:
        found = find_unit(column.unit)
    except UnitMismatchError as error:
        return str(error)
    stored = canonical_unit(pid_unit(column.pid))
    if found is None:
        if stored is not None:
            return f"unit {column.unit!r} is unknown; {column.pid} is stored in {stored.symbol}"
        return None
    if stored is not None and found[0] is not stored:
        return f"{column.unit!r} is no unit of {column.pid} ({stored.symbol})"
    return None


def _generic_column(header: str, mapping: Mapping[str, str]) -> _Column | None:
    text = header.strip()
    if text in mapping:
        return _Column(0, mapping[text], None)
    name, unit = text, None
    match = _HEADER.match(text)
    if match is not None:
        name, unit = match.group("name"), match.group("unit")
    key = re.sub(r"[^0-9A-Za-z]+", "_", name).strip("_").upper()
    pid = ALIASES.get(key, key)
    if pid_unit(pid) is None and not is_pid_name(name.strip()):
        return None
    return _Column(0, pid if pid_unit(pid) is not None else name.strip(), unit)


def _torque_column(header: str, mapping: Mapping[str, str]) -> _Column | None:
    if header.strip() in mapping:
        return _Column(0, mapping[header.strip()], None)
    found = by_csv_column(header)
    if found is None:
        # The phone's GPS speed, which Torque's key list has no column name for.
        match = _HEADER.match(header.strip())
        if match is not None and match.group("name").strip().lower() == "gps speed":
            return _Column(0, "GPS_SPEED", match.group("unit"))
        return None
    return _Column(0, found.key.name, found.unit_text)


def read_csv(
    data: str,
    fmt: ImportFormat,
    skips: Skips,
    *,
    mapping: Mapping[str, str] | None = None,
    rate_hz: float | None = None,
    start_ms: int | None = None,
) -> Iterator[Reading]:
    """The readings of a CSV log; rows and values it cannot read are counted in ``skips``."""
    given = dict(mapping or {})
    for pid in given.values():
        if not is_pid_name(pid):
            raise UnreadableLogError(f"--map names {pid!r}, which is no PID name (A-Z, 0-9, _)")
    rows = csv.reader(io.StringIO(data, newline=""))
    try:
        header = next(rows)
    except StopIteration:
        raise UnreadableLogError("the file is empty") from None
    except csv.Error as error:
        raise UnreadableLogError(f"the header row is no CSV: {error}") from None
    lowered = [h.strip().lower() for h in header]
    time_indexes = [lowered.index(n) for n in TIME_COLUMNS if n in lowered]
    if fmt is ImportFormat.torque_csv:
        # GPS time is the satellites' (UTC, when it has a fix); Device Time is the phone's clock.
        time_indexes = [lowered.index(n) for n in ("gps time", "device time") if n in lowered]
    time_index = time_indexes[0] if time_indexes else None
    if time_index is None and rate_hz is None:
        raise UnreadableLogError(
            "no time column (ts, time, timestamp, Device Time, GPS Time): give --rate-hz and "
            "--start for a log of a known sample rate"
        )
    if time_index is None and start_ms is None:
        raise UnreadableLogError("--rate-hz needs --start, the time of the first row")
    columns: list[_Column] = []
    reader = _torque_column if fmt is ImportFormat.torque_csv else _generic_column
    skip_time = {"ts", "time", "timestamp", "datetime", "date", "device time", "gps time"}
    for index, name in enumerate(header):
        if name.strip().lower() in skip_time:
            continue
        column = reader(name, given)
        if column is None:
            skips.columns.append(name.strip()[:MAX_CELL_CHARS])
            continue
        column = _Column(index, column.pid, column.unit)
        problem = _unit_problem(column)
        if problem is not None:
            skips.columns.append(f"{name.strip()[:MAX_CELL_CHARS]} ({problem})")
            continue
        columns.append(column)
        if pid_unit(column.pid) is None:
            found = find_unit(column.unit) if column.unit and column.unit.strip() else None
            unit = found[0].symbol if found is not None else column.unit
            titled = _HEADER.match(name.strip())
            shown = titled.group("name") if titled is not None else name.strip()
            skips.names.append((column.pid, shown[:MAX_CELL_CHARS], unit))
    if not columns:
        raise UnreadableLogError("no column names a value we know; map them with --map COLUMN=PID")
    how = [_converter(c) for c in columns]
    line = 0
    while True:
        try:
            row = next(rows)
        except StopIteration:
            break
        except csv.Error as error:
            skips.rows[f"unreadable CSV row ({error})"] += 1
            continue
        line += 1
        if not row or all(not cell.strip() for cell in row):
            continue
        if time_index is None:
            assert start_ms is not None
            assert rate_hz is not None
            ts: int | None = start_ms + round((line - 1) * 1000 / rate_hz)
        else:
            ts = next(
                (t for i in time_indexes if i < len(row) and (t := parse_time(row[i])) is not None),
                None,
            )
        if ts is None:
            skips.rows["no readable time"] += 1
            continue
        for column, convert in zip(columns, how, strict=True):
            if column.index >= len(row):
                continue
            cell = row[column.index]
            value = _number(cell)
            if value is None:
                stripped = cell.strip()
                if stripped and stripped != "-":
                    skips.values[f"{column.pid}: not a number"] += 1
                continue
            stored = _stored(value, convert)
            if not math.isfinite(stored):
                skips.values[f"{column.pid}: no value in the stored unit"] += 1
                continue
            yield Reading(seq_of(ts, column.pid), ts, column.pid, round(stored, 9))


def read_gpx(data: str, skips: Skips) -> Iterator[Reading]:
    """GPS samples of a GPX file's track points (and route or waypoints with a time)."""
    try:
        parsed = gpxpy.parse(data)
    except (gpxpy.gpx.GPXException, ValueError) as error:
        raise UnreadableLogError(f"not a readable GPX file: {error}") from None
    points = [p for track in parsed.tracks for seg in track.segments for p in seg.points]
    if not points:
        raise UnreadableLogError("the GPX file has no track points")
    for point in points:
        if point.time is None:
            skips.rows["track point without a time"] += 1
            continue
        when = point.time if point.time.tzinfo else point.time.replace(tzinfo=UTC)
        ts = int(when.timestamp() * 1000)
        if not MIN_TS_MS <= ts <= MAX_TS_MS:
            skips.rows["track point time out of range"] += 1
            continue
        values: list[tuple[str, float | None]] = [
            ("GPS_LAT", point.latitude),
            ("GPS_LON", point.longitude),
            ("GPS_ALT", point.elevation),
            ("GPS_SPEED", None if point.speed is None else point.speed * 3.6),
        ]
        for pid, value in values:
            if value is not None and math.isfinite(value):
                yield Reading(seq_of(ts, pid), ts, pid, value)
