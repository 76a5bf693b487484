"""Device values other domains read (through ``devices.service``)."""

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class ActiveDevice:
    """A device whose token is not revoked, as the ingest path needs it."""

    id: int
    vehicle_id: int
    # Its newest upload: most batches find it recent and skip the UPDATE that records it.
    last_upload_at: datetime | None
