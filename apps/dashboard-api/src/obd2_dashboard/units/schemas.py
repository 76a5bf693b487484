from typing import Annotated

from fastapi import Query
from pydantic import Field

from obd2_dashboard.kit.schemas import Schema
from obd2_dashboard.units.table import (
    SYSTEM_LABELS,
    UNITS,
    CanonicalUnit,
    Conversion,
    UnitSystem,
)

UnitSystemField = Annotated[
    UnitSystem,
    Field(
        description="metric (km/h, °C, kPa, km, L, L/100 km), imperial_us (mph, °F, psi, mi, "
        "US gal, mpg US) or imperial_uk (the same with UK gallons)"
    ),
]

UnitsQuery = Annotated[
    UnitSystem | None,
    Query(
        description="the unit system of the values and the header; default the signed-in "
        "user's (GET /api/v1/me/preferences)"
    ),
]


class Preferences(Schema):
    units: UnitSystemField


class PreferencesUpdate(Schema):
    units: UnitSystemField | None = None


class ConversionRead(Schema):
    unit: Annotated[str, Field(description="the unit shown")]
    scale: float
    offset: float
    inverse: Annotated[
        bool,
        Field(
            description="false: shown = value * scale + offset; true: shown = scale / value "
            "(fuel economy: a lower L/100 km is a higher mpg)"
        ),
    ]

    @classmethod
    def of(cls, conversion: Conversion) -> "ConversionRead":
        return cls(
            unit=conversion.unit,
            scale=conversion.scale,
            offset=conversion.offset,
            inverse=conversion.inverse,
        )


class UnitRead(Schema):
    unit: Annotated[str, Field(description="the canonical unit values are stored in")]
    quantity: str
    aliases: Annotated[list[str], Field(description="other names of this unit (python-OBD's…)")]
    systems: Annotated[
        dict[UnitSystem, ConversionRead],
        Field(description="how each system shows it; a system not named shows it as stored"),
    ]

    @classmethod
    def of(cls, unit: CanonicalUnit) -> "UnitRead":
        systems = {
            system: ConversionRead.of(conversion)
            for system in UnitSystem
            if (conversion := unit.conversion(system)) is not None
        }
        return cls(
            unit=unit.symbol, quantity=unit.quantity, aliases=list(unit.aliases), systems=systems
        )


class SystemRead(Schema):
    id: UnitSystem
    label: str


class UnitTable(Schema):
    systems: list[SystemRead]
    units: list[UnitRead]

    @classmethod
    def build(cls) -> "UnitTable":
        return cls(
            systems=[SystemRead(id=s, label=SYSTEM_LABELS[s]) for s in UnitSystem],
            units=[UnitRead.of(u) for u in UNITS],
        )
