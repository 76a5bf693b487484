"""Batches the worker gave up on: what the Status page and the operator's CLI see and do."""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from obd2_dashboard.telemetry.repository import DeadLetterRepository

# How many of the newest dead letters the status data lists.
STATUS_NEWEST = 5


@dataclass(frozen=True, slots=True)
class DeadLetterView:
    id: int
    vehicle_id: int
    error: str
    attempts: int
    batch_created_at: datetime
    created_at: datetime

    def as_json(self, *, whole_error: bool = True) -> dict[str, object]:
        return {
            "id": self.id,
            "vehicle_id": self.vehicle_id,
            # The status data is public (/readyz): there it names the kind of error only, since
            # a database's message can quote the stored value. The operator's CLI shows it all.
            "error": self.error if whole_error else self.error.split(":", 1)[0],
            "attempts": self.attempts,
            "batch_stored_at": self.batch_created_at.isoformat(),
            "at": self.created_at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class DeadLetterSummary:
    count: int
    newest: list[DeadLetterView]

    def as_json(self, *, whole_errors: bool = True) -> dict[str, object]:
        return {
            "count": self.count,
            "newest": [letter.as_json(whole_error=whole_errors) for letter in self.newest],
        }


class DeadLetterNotFoundError(LookupError):
    pass


async def summary(session: AsyncSession, newest: int = STATUS_NEWEST) -> DeadLetterSummary:
    repo = DeadLetterRepository(session)
    letters = await repo.newest(newest)
    return DeadLetterSummary(
        count=await repo.count(),
        newest=[
            DeadLetterView(
                id=letter.id,
                vehicle_id=letter.vehicle_id,
                error=letter.error,
                attempts=letter.attempts,
                batch_created_at=letter.batch_created_at,
                created_at=letter.created_at,
            )
            for letter in letters
        ],
    )


async def retry(session: AsyncSession, letter_id: int) -> int:
    """Puts a dead letter's work back in the outbox; returns the new outbox row's id."""
    repo = DeadLetterRepository(session)
    letter = await repo.get(letter_id)
    if letter is None:
        raise DeadLetterNotFoundError(letter_id)
    return (await repo.requeue(letter)).id


async def discard(session: AsyncSession, letter_id: int) -> None:
    """Forgets a dead letter (its samples stay stored; its rollups stay as they were)."""
    repo = DeadLetterRepository(session)
    letter = await repo.get(letter_id)
    if letter is None:
        raise DeadLetterNotFoundError(letter_id)
    await repo.delete(letter)
