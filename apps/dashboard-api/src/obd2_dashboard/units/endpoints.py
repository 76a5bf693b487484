from fastapi import APIRouter

from obd2_dashboard.auth.dependencies import CurrentUser
from obd2_dashboard.dependencies import SessionDep
from obd2_dashboard.kit.schemas import error_responses
from obd2_dashboard.units import service
from obd2_dashboard.units.schemas import Preferences, PreferencesUpdate, UnitTable

router = APIRouter(tags=["units"])

_TABLE = UnitTable.build()


@router.get(
    "/units",
    response_model=UnitTable,
    responses=error_responses(401),
    summary="Every stored unit and how each unit system shows it (the UI converts with this)",
)
async def units(_user: CurrentUser) -> UnitTable:
    return _TABLE


@router.get(
    "/me/preferences",
    response_model=Preferences,
    responses=error_responses(401),
    summary="The signed-in user's preferences: the unit system figures are shown in",
)
async def get_preferences(user: CurrentUser) -> Preferences:
    return service.preferences(user)


@router.patch(
    "/me/preferences",
    response_model=Preferences,
    responses=error_responses(401, 403, 422),
    summary="Change the signed-in user's preferences",
)
async def update_preferences(
    body: PreferencesUpdate, user: CurrentUser, session: SessionDep
) -> Preferences:
    return await service.update_preferences(session, user, body)
