"""The PID catalogue: every PID a vehicle has sent, with its display name and unit.

Ingest records names through ``PidCatalogue`` in the transaction that stores the samples, so a
PID has its record as soon as it has samples, on every path (HTTP, the bridge socket, Torque,
imports). The server's own definitions (the PID table, Torque's key list: ``definitions``) are
not copied into the table; a record keeps what a device or an import said of a name the server
does not know (``define``).
"""

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from obd2_dashboard.models import User, VehiclePid
from obd2_dashboard.pids.definitions import (
    MAX_DISPLAY_NAME,
    MAX_SHORT_NAME,
    MAX_UNIT,
    PidNames,
    Source,
    builtin,
    is_pid_name,
    source_of,
)
from obd2_dashboard.pids.repository import VehiclePidRepository
from obd2_dashboard.vehicles.service import get_vehicle
from obd2_protocol import PIDS

# The cache of recorded names is dropped this often, and when it grows past its bound: it only
# spares writes, so forgetting costs one upsert per vehicle and batch, never a wrong record.
CACHE_MAX_AGE_S = 600.0
CACHE_MAX_ENTRIES = 200_000

_Key = tuple[int, str]


@dataclass(frozen=True, slots=True)
class Recorded:
    """Records written in a transaction, to be remembered once it has committed."""

    entries: tuple[tuple[_Key, int], ...] = ()


class PidCatalogue:
    """Ingest's side of the catalogue, one per process: remembers which (vehicle, PID) records
    exist and how old their first sample is, so that a batch of known PIDs costs no query."""

    def __init__(
        self,
        *,
        max_age_s: float = CACHE_MAX_AGE_S,
        max_entries: int = CACHE_MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_age_s = max_age_s
        self.max_entries = max_entries
        self._clock = clock
        self._known: dict[_Key, int] = {}
        self._since = clock()

    def candidates(self, vehicle_id: int, oldest: Mapping[str, int]) -> list[str]:
        """The names of ``oldest`` (name → a time at or before its oldest new sample) whose
        record may be missing or may need an older first_seen_ts."""
        if self._clock() - self._since > self.max_age_s:
            self._known.clear()
            self._since = self._clock()
        out: list[str] = []
        for name, ts in oldest.items():
            known = self._known.get((vehicle_id, name))
            if known is None or ts < known:
                out.append(name)
        return out

    async def record(
        self,
        session: AsyncSession,
        vehicle_id: int,
        first_seen: Mapping[str, int],
        sender: Source,
    ) -> Recorded:
        """Writes the records that are missing or too young for (name → oldest new sample ts)
        of samples ``sender`` stored; ``remember`` the result once the transaction committed."""
        rows: dict[str, tuple[int, str]] = {}
        for name, ts in first_seen.items():
            known = self._known.get((vehicle_id, name))
            if known is None or ts < known:
                rows[name] = (ts, source_of(name, sender))
        if not rows:
            return Recorded()
        await VehiclePidRepository(session).record_first_seen(vehicle_id, rows)
        return Recorded(tuple(((vehicle_id, name), ts) for name, (ts, _) in rows.items()))

    def remember(self, recorded: Iterable[Recorded]) -> None:
        for batch in recorded:
            for key, ts in batch.entries:
                known = self._known.get(key)
                self._known[key] = ts if known is None else min(known, ts)
        if len(self._known) > self.max_entries:
            self._known.clear()
            self._since = self._clock()

    def forget_vehicle(self, vehicle_id: int) -> None:
        """For a deleted vehicle: SQLite may give its id to the next one."""
        for key in [key for key in self._known if key[0] == vehicle_id]:
            del self._known[key]


class InvalidDefinitionError(ValueError):
    pass


def _clean(text: str | None, limit: int) -> str | None:
    if text is None:
        return None
    printable = "".join(ch for ch in text if ch.isprintable()).strip()
    return printable[:limit] or None


async def define(session: AsyncSession, vehicle_id: int, names: Sequence[PidNames]) -> None:
    """Records what a device or an import says names are (display name, short name, unit),
    for names the vehicle may have no sample of yet; a field given as None keeps what was
    recorded.

    Names the server defines itself keep its definition when read (see ``entry_of``). Text is
    kept printable and cut to the columns' lengths; a name that is no PID name is refused with
    ``InvalidDefinitionError``.
    """
    cleaned: list[PidNames] = []
    for given in names:
        if not is_pid_name(given.name):
            raise InvalidDefinitionError(f"{given.name!r} is no PID name (A-Z, 0-9, _; 1 to 64)")
        unit = given.unit
        cleaned.append(
            PidNames(
                given.name,
                given.source,
                _clean(given.display_name, MAX_DISPLAY_NAME),
                _clean(given.short_name, MAX_SHORT_NAME),
                None if unit is None else (_clean(unit, MAX_UNIT) or ""),
            )
        )
    await VehiclePidRepository(session).define(vehicle_id, cleaned)


@dataclass(frozen=True, slots=True)
class CatalogueEntry:
    name: str
    display_name: str
    short_name: str | None
    unit: str
    source: str
    first_seen_ts: int | None


def entry_of(row: VehiclePid) -> CatalogueEntry:
    known = builtin(row.name)
    if known is not None:
        return CatalogueEntry(
            row.name,
            known.display_name,
            known.short_name,
            known.unit,
            row.source,
            row.first_seen_ts,
        )
    return CatalogueEntry(
        row.name,
        row.display_name or row.name,
        row.short_name,
        row.unit or "",
        row.source,
        row.first_seen_ts,
    )


async def vehicle_catalogue(
    session: AsyncSession, user: User, vehicle_id: int
) -> list[CatalogueEntry]:
    vehicle = await get_vehicle(session, user, vehicle_id)
    return [entry_of(row) for row in await VehiclePidRepository(session).of_vehicle(vehicle.id)]


async def unknown_names(session: AsyncSession, vehicle_id: int, names: Sequence[str]) -> list[str]:
    """The names that are neither in the PID table nor among the vehicle's PIDs."""
    others = [name for name in names if name not in PIDS]
    if not others:
        return []
    known = await VehiclePidRepository(session).names(vehicle_id, others)
    return [name for name in others if name not in known]


async def vehicle_pid_names(session: AsyncSession, vehicle_id: int) -> list[str]:
    """Every name the vehicle has samples of."""
    rows = await VehiclePidRepository(session).of_vehicle(vehicle_id)
    return [row.name for row in rows if row.first_seen_ts is not None]
