"""Whether the viewer of an open live stream may still watch it.

A stream is authorised when it opens; signing out, an expired session or a withdrawn share
must end it too, so open streams ask again every ``LIVE_ACCESS_RECHECK_S``.
"""

import logging
from collections.abc import Collection

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from obd2_dashboard.auth.service import user_for_cookie
from obd2_dashboard.vehicles.service import visible_vehicle

log = logging.getLogger("obd2_dashboard.live")


async def watchable(
    sessionmaker: async_sessionmaker[AsyncSession],
    secret: bytes,
    cookie: str | None,
    vehicle_ids: Collection[int],
) -> set[int] | None:
    """The vehicles among ``vehicle_ids`` the cookie's user may still watch; None when the
    session itself is gone. A database that does not answer takes nothing away: the streams go
    on and are checked again next time."""
    if not cookie:
        return None
    try:
        async with sessionmaker() as session:
            user = await user_for_cookie(session, secret, cookie)
            if user is None:
                return None
            return {
                v for v in vehicle_ids if await visible_vehicle(session, user.id, v) is not None
            }
    except Exception as exc:
        log.warning("live access re-check failed: %s", type(exc).__name__)
        return set(vehicle_ids)
