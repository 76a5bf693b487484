from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from obd2_dashboard.kit.db import utcnow
from obd2_dashboard.models import VehiclePid
from obd2_dashboard.pids.definitions import PidNames


def _insert(session: AsyncSession) -> Any:
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(VehiclePid)
    return sqlite.insert(VehiclePid)


class VehiclePidRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def record_first_seen(
        self, vehicle_id: int, first_seen: Mapping[str, tuple[int, str]]
    ) -> None:
        """(name → (oldest sample ts, source)): records new names, and moves a recorded name's
        first_seen_ts earlier when older samples arrived (an import of old logs)."""
        if not first_seen:
            return
        now = utcnow()
        statement = _insert(self.session).values(
            [
                {
                    "vehicle_id": vehicle_id,
                    "name": name,
                    "source": source,
                    "first_seen_ts": ts,
                    "created_at": now,
                }
                for name, (ts, source) in sorted(first_seen.items())
            ]
        )
        excluded = statement.excluded
        await self.session.execute(
            statement.on_conflict_do_update(
                index_elements=["vehicle_id", "name"],
                set_={"first_seen_ts": excluded.first_seen_ts},
                where=or_(
                    VehiclePid.first_seen_ts.is_(None),
                    VehiclePid.first_seen_ts > excluded.first_seen_ts,
                ),
            )
        )

    async def define(self, vehicle_id: int, definitions: Sequence[PidNames]) -> None:
        """Records what a device or an import says a name is (name, short name, unit; None
        keeps the recorded one); a name without samples yet is recorded with no
        first_seen_ts."""
        if not definitions:
            return
        now = utcnow()
        statement = _insert(self.session).values(
            [
                {
                    "vehicle_id": vehicle_id,
                    "name": d.name,
                    "source": d.source,
                    "display_name": d.display_name,
                    "short_name": d.short_name,
                    "unit": d.unit,
                    "first_seen_ts": None,
                    "created_at": now,
                }
                for d in sorted(definitions, key=lambda d: d.name)
            ]
        )
        excluded = statement.excluded
        display = func.coalesce(excluded.display_name, VehiclePid.display_name)
        short = func.coalesce(excluded.short_name, VehiclePid.short_name)
        unit = func.coalesce(excluded.unit, VehiclePid.unit)
        await self.session.execute(
            statement.on_conflict_do_update(
                index_elements=["vehicle_id", "name"],
                set_={"display_name": display, "short_name": short, "unit": unit},
                # A renaming upload sent again writes nothing.
                where=or_(
                    VehiclePid.display_name.is_distinct_from(display),
                    VehiclePid.short_name.is_distinct_from(short),
                    VehiclePid.unit.is_distinct_from(unit),
                ),
            )
        )

    async def of_vehicle(self, vehicle_id: int) -> Sequence[VehiclePid]:
        result = await self.session.execute(
            select(VehiclePid).where(VehiclePid.vehicle_id == vehicle_id).order_by(VehiclePid.name)
        )
        return result.scalars().all()

    async def names(self, vehicle_id: int, names: Sequence[str]) -> set[str]:
        """Which of ``names`` the vehicle's catalogue holds."""
        if not names:
            return set()
        result = await self.session.execute(
            select(VehiclePid.name).where(
                VehiclePid.vehicle_id == vehicle_id, VehiclePid.name.in_(list(names))
            )
        )
        return set(result.scalars())
