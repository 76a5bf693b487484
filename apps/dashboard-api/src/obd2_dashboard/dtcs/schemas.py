from typing import Annotated, Any, Literal

from pydantic import Field

from obd2_dashboard.kit.schemas import Schema

DtcKind = Literal["stored", "pending", "permanent"]


class DtcRead(Schema):
    id: int
    code: str
    kind: DtcKind
    description: str
    manufacturer_specific: bool
    first_seen: Annotated[int, Field(description="epoch ms")]
    last_seen: Annotated[int, Field(description="epoch ms")]
    cleared_at: Annotated[int | None, Field(description="epoch ms; null while active")]
    clear_reason: Annotated[
        Literal["cleared", "gone"] | None,
        Field(description="cleared by a user's command, or no longer reported by the car"),
    ]
    cleared_by: str | None
    freeze_frame: dict[str, Any] | None


class ClearRequest(Schema):
    confirm: Annotated[
        Literal[True],
        Field(description="true: the user confirmed that clearing also resets readiness monitors"),
    ]


class CommandRead(Schema):
    id: int
    kind: str
    device_id: int
    created_at: Any
    sent_at: Any
    completed_at: Any
    ok: bool | None
    detail: str | None
