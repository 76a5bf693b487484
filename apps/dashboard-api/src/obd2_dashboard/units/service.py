"""A user's unit system, and the units of the PIDs figures are converted for."""

import math
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from obd2_dashboard.models import User
from obd2_dashboard.pids.definitions import builtin
from obd2_dashboard.units.repository import PreferenceRepository
from obd2_dashboard.units.schemas import Preferences, PreferencesUpdate
from obd2_dashboard.units.table import (
    Conversion,
    UnitMismatchError,
    UnitSystem,
    canonical_unit,
    conversion_from,
    tidy,
)


def unit_system_of(user: User) -> UnitSystem:
    try:
        return UnitSystem(user.unit_system)
    except ValueError:
        # Only this service writes the column, through the enum; never fail a read on it.
        return UnitSystem.metric


def preferences(user: User) -> Preferences:
    return Preferences(units=unit_system_of(user))


async def update_preferences(
    session: AsyncSession, user: User, changes: PreferencesUpdate
) -> Preferences:
    if changes.units is not None:
        user.unit_system = changes.units.value
        await session.flush()
    return preferences(user)


async def owner_unit_system(session: AsyncSession, vehicle_id: int) -> UnitSystem:
    """The unit system of the vehicle's owner: what alerts about the vehicle are told in."""
    stored = await PreferenceRepository(session).owner_unit_system(vehicle_id)
    try:
        return UnitSystem(stored) if stored is not None else UnitSystem.metric
    except ValueError:
        return UnitSystem.metric


def pid_unit(pid: str) -> str | None:
    """The unit ``pid`` is stored in (any spelling ``units.table.canonical_unit`` knows), or
    None for a PID with no known unit. The one place that asks where PID units come from: the
    server's own definitions (the PID table, Torque's published ids)."""
    known = builtin(pid)
    return known.unit if known is not None else None


@dataclass(frozen=True, slots=True)
class PidDisplay:
    """How one PID's values are shown in a unit system."""

    unit: str
    conversion: Conversion | None

    def value(self, stored: float) -> float:
        return stored if self.conversion is None else self.conversion.to_unit(stored)


def pid_display(pid: str, system: UnitSystem) -> PidDisplay:
    """``pid``'s values as ``system`` shows them: the unit to name and how to convert."""
    stored_unit = pid_unit(pid)
    canonical = canonical_unit(stored_unit)
    if canonical is None:
        return PidDisplay(stored_unit or "", None)
    conversion = canonical.conversion(system)
    return PidDisplay(canonical.symbol if conversion is None else conversion.unit, conversion)


class UnitError(ValueError):
    """A figure given in a unit that does not fit, or that has no value in the stored unit."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True, slots=True)
class Threshold:
    """An alert condition's figures in one unit: ``op`` is ``above`` or ``below`` in that unit."""

    unit: str
    op: str | None
    threshold: float | None
    clear_threshold: float | None


def _flipped(op: str | None) -> str | None:
    return {"above": "below", "below": "above"}.get(op or "", op)


def threshold_to_stored(
    pid: str, given_unit: str, op: str | None, threshold: float | None, clear: float | None
) -> Threshold:
    """A condition typed in ``given_unit`` (°F, mph, mpg US…) as the stored rule keeps it, in
    ``pid``'s stored unit. Fuel economy runs the other way in mpg: "below 20 mpg US" is kept as
    "above 11.76 L/100km". Raises ``UnitError`` naming the field at fault."""
    stored_unit = pid_unit(pid)
    canonical = canonical_unit(stored_unit)
    if canonical is None:
        if given_unit == (stored_unit or ""):
            return Threshold(given_unit, op, threshold, clear)
        raise UnitError("unit", f"{pid} is stored as {stored_unit or 'a plain number'}")
    try:
        conversion = conversion_from(given_unit, canonical)
    except UnitMismatchError as exc:
        raise UnitError("unit", f"{pid}: {exc}") from exc
    if conversion is None:
        return Threshold(canonical.symbol, op, threshold, clear)

    def stored(field: str, value: float | None) -> float | None:
        if value is None:
            return None
        converted = conversion.from_unit(value)
        if not math.isfinite(converted):
            raise UnitError(
                field,
                f"{value:g} {conversion.unit} has no value in {canonical.symbol}; "
                "choose another figure",
            )
        return converted

    return Threshold(
        canonical.symbol,
        _flipped(op) if conversion.inverse else op,
        stored("threshold", threshold),
        stored("clear_threshold", clear),
    )


def threshold_in(
    pid: str, system: UnitSystem, op: str | None, threshold: float | None, clear: float | None
) -> Threshold:
    """A stored condition as a person using ``system`` reads it (the inverse of the above)."""
    display = pid_display(pid, system)
    conversion = display.conversion
    if conversion is None:
        return Threshold(display.unit, op, threshold, clear)

    def shown(value: float | None) -> float | None:
        return None if value is None else tidy(conversion.to_unit(value))

    return Threshold(
        display.unit,
        _flipped(op) if conversion.inverse else op,
        shown(threshold),
        shown(clear),
    )
