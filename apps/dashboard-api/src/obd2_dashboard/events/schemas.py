from typing import Annotated

from pydantic import Field

from obd2_dashboard.kit.schemas import Schema


class VehicleEventRead(Schema):
    id: int
    ts: Annotated[int, Field(description="epoch ms, the device's time")]
    kind: Annotated[str, Field(description='"notice": a notice of Torque Pro\'s')]
    event_class: Annotated[
        str,
        Field(description='the sender\'s class ("org.prowl.torque.map.notices.TripNotice")'),
    ]
    message: str
