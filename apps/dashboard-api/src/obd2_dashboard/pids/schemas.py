from typing import Annotated

from pydantic import Field

from obd2_dashboard.kit.schemas import Schema
from obd2_dashboard.pids.definitions import PidDefinition, Source, as_source
from obd2_dashboard.pids.service import CatalogueEntry
from obd2_protocol import PIDS

_UNIT = (
    "the unit every stored value is in (canonical: kph, degC, kPa, km, percent, rpm, volt, "
    "gps, liters_per_hour, …); empty for a count or a ratio without unit"
)
_SOURCE = (
    "obd: a mode-01 PID; torque: one of Torque Pro's own ids; agent: a value of the Bridge "
    "Agent's (adapter voltage, phone GPS); import: a column of an imported log"
)


class PidRead(Schema):
    name: Annotated[str, Field(description="the name samples are stored and asked for under")]
    display_name: str
    short_name: str | None
    unit: Annotated[str, Field(description=_UNIT)]
    source: Annotated[Source, Field(description=_SOURCE)]
    standard: Annotated[
        bool,
        Field(
            description="a name of the PID table: the names the ingest API, the Bridge Agent "
            "and alert rules take"
        ),
    ]

    @classmethod
    def of(cls, definition: PidDefinition) -> "PidRead":
        return cls(
            name=definition.name,
            display_name=definition.display_name,
            short_name=definition.short_name,
            unit=definition.unit,
            source=definition.source,
            standard=definition.name in PIDS,
        )


class VehiclePidRead(PidRead):
    source: Annotated[Source, Field(description=_SOURCE + " (who sent it first)")]
    first_seen_ts: Annotated[
        int | None,
        Field(
            description="epoch ms of the oldest sample stored under this name; null while a "
            "device has named the PID but sent no value of it"
        ),
    ]

    @classmethod
    def of_entry(cls, entry: CatalogueEntry) -> "VehiclePidRead":
        return cls(
            name=entry.name,
            display_name=entry.display_name,
            short_name=entry.short_name,
            unit=entry.unit,
            source=as_source(entry.source),
            standard=entry.name in PIDS,
            first_seen_ts=entry.first_seen_ts,
        )
