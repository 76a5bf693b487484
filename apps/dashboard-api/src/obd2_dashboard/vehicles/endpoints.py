from dataclasses import asdict
from functools import partial

from fastapi import APIRouter, HTTPException, Response, status
from sqlalchemy.ext.asyncio import AsyncSession

from obd2_dashboard.alerts.service import open_alert_counts
from obd2_dashboard.auth.dependencies import CurrentUser
from obd2_dashboard.dependencies import BrokerDep, SessionDep, SettingsDep, StateDep
from obd2_dashboard.kit.db import after_commit, utcnow
from obd2_dashboard.kit.schemas import IdPath, error_responses
from obd2_dashboard.live.revocations import announce_share_withdrawn
from obd2_dashboard.models import User, Vehicle
from obd2_dashboard.presence import service as presence
from obd2_dashboard.settings import Settings
from obd2_dashboard.vehicles import service
from obd2_dashboard.vehicles.schemas import (
    InvitationRead,
    InvitationSent,
    MyInvitationRead,
    ShareCreate,
    ShareRead,
    VehicleCreate,
    VehicleRead,
    VehicleUpdate,
    VinInfoRead,
)
from obd2_dashboard.vehicles.vin import decode

router = APIRouter(prefix="/vehicles", tags=["vehicles"])


def _read(vehicle: Vehicle, user: User, settings: Settings) -> VehicleRead:
    read = VehicleRead.model_validate(vehicle)
    now = presence.of_vehicle(vehicle, utcnow(), presence.thresholds(settings))
    read.state, read.state_since = now.state, now.since
    read.role = "owner" if vehicle.owner_id == user.id else "viewer"
    read.vin_info = VinInfoRead(**asdict(decode(vehicle.vin))) if vehicle.vin else None
    return read


async def _with_open_alerts(session: AsyncSession, reads: list[VehicleRead]) -> list[VehicleRead]:
    counts = await open_alert_counts(session, [read.id for read in reads])
    for read in reads:
        read.open_alerts = counts.get(read.id, 0)
    return reads


@router.get("", response_model=list[VehicleRead], responses=error_responses(401))
async def list_vehicles(
    user: CurrentUser, session: SessionDep, settings: SettingsDep
) -> list[VehicleRead]:
    """The user's own vehicles and those shared with them."""
    reads = [_read(v, user, settings) for v in await service.list_vehicles(session, user)]
    return await _with_open_alerts(session, reads)


@router.post(
    "",
    response_model=VehicleRead,
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(401, 403, 422),
)
async def create_vehicle(
    body: VehicleCreate, user: CurrentUser, session: SessionDep, settings: SettingsDep
) -> VehicleRead:
    return _read(await service.create_vehicle(session, user, body), user, settings)


@router.get("/{vehicle_id}", response_model=VehicleRead, responses=error_responses(401, 404, 422))
async def get_vehicle(
    vehicle_id: IdPath, user: CurrentUser, session: SessionDep, settings: SettingsDep
) -> VehicleRead:
    read = _read(await service.get_vehicle(session, user, vehicle_id), user, settings)
    return (await _with_open_alerts(session, [read]))[0]


@router.patch(
    "/{vehicle_id}", response_model=VehicleRead, responses=error_responses(401, 403, 404, 422)
)
async def update_vehicle(
    vehicle_id: IdPath,
    body: VehicleUpdate,
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
) -> VehicleRead:
    return _read(await service.update_vehicle(session, user, vehicle_id, body), user, settings)


@router.delete(
    "/{vehicle_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(401, 403, 404, 422),
    summary="Delete a vehicle with its devices and samples",
)
async def delete_vehicle(
    vehicle_id: IdPath, user: CurrentUser, session: SessionDep, state: StateDep
) -> Response:
    await service.delete_vehicle(session, user, vehicle_id)

    async def forget() -> None:
        # SQLite may give the id to the next vehicle: its PIDs must be recorded afresh.
        state.catalogue.forget_vehicle(vehicle_id)

    after_commit(session, forget)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/{vehicle_id}/shares",
    response_model=list[ShareRead],
    responses=error_responses(401, 403, 404, 422),
    summary="Users this vehicle is shared with (owner only)",
)
async def list_shares(
    vehicle_id: IdPath, user: CurrentUser, session: SessionDep
) -> list[ShareRead]:
    shares = await service.list_shares(session, user, vehicle_id)
    return [ShareRead(user_id=u.id, email=u.email, created_at=s.created_at) for s, u in shares]


@router.post(
    "/{vehicle_id}/shares",
    response_model=InvitationSent,
    status_code=status.HTTP_202_ACCEPTED,
    responses=error_responses(401, 403, 404, 422),
    summary="Invite an email to read-only access (owner only); it begins when they accept",
)
async def share_vehicle(
    vehicle_id: IdPath, body: ShareCreate, user: CurrentUser, session: SessionDep
) -> InvitationSent:
    try:
        email = await service.invite_to_vehicle(session, user, vehicle_id, body.email)
    except service.ShareError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
    return InvitationSent(detail="invitation sent", email=email)


@router.get(
    "/{vehicle_id}/invitations",
    response_model=list[InvitationRead],
    responses=error_responses(401, 403, 404, 422),
    summary="Invitations to this vehicle not yet accepted (owner only)",
)
async def list_invitations(
    vehicle_id: IdPath, user: CurrentUser, session: SessionDep
) -> list[InvitationRead]:
    invitations = await service.list_invitations(session, user, vehicle_id)
    return [InvitationRead.model_validate(i) for i in invitations]


@router.delete(
    "/{vehicle_id}/invitations/{invitation_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(401, 403, 404, 422),
    summary="Withdraw an invitation not yet accepted (owner only)",
)
async def withdraw_invitation(
    vehicle_id: IdPath, invitation_id: IdPath, user: CurrentUser, session: SessionDep
) -> Response:
    try:
        await service.withdraw_invitation(session, user, vehicle_id, invitation_id)
    except service.InvitationNotFoundError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.delete(
    "/{vehicle_id}/shares/{user_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(401, 403, 404, 422),
    summary="Withdraw a user's access (owner only)",
)
async def unshare_vehicle(
    vehicle_id: IdPath, user_id: IdPath, user: CurrentUser, session: SessionDep, broker: BrokerDep
) -> Response:
    try:
        await service.unshare_vehicle(session, user, vehicle_id, user_id)
    except service.ShareError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    # The former viewer's open live streams of the vehicle end now, not at a re-check.
    after_commit(session, partial(announce_share_withdrawn, broker, vehicle_id, user_id))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


invitations_router = APIRouter(prefix="/invitations", tags=["vehicles"])


@invitations_router.get(
    "",
    response_model=list[MyInvitationRead],
    responses=error_responses(401),
    summary="Vehicles others invite you to watch",
)
async def my_invitations(user: CurrentUser, session: SessionDep) -> list[MyInvitationRead]:
    return [
        MyInvitationRead(
            id=invitation.id,
            vehicle_id=vehicle.id,
            vehicle_name=vehicle.name,
            invited_by=owner.email,
            created_at=invitation.created_at,
        )
        for invitation, vehicle, owner in await service.my_invitations(session, user)
    ]


@invitations_router.post(
    "/{invitation_id}/accept",
    response_model=VehicleRead,
    responses=error_responses(401, 403, 404, 422),
    summary="Accept an invitation: the vehicle is shared with you read-only",
)
async def accept_invitation(
    invitation_id: IdPath, user: CurrentUser, session: SessionDep, settings: SettingsDep
) -> VehicleRead:
    try:
        vehicle = await service.accept_invitation(session, user, invitation_id)
    except service.InvitationNotFoundError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    return _read(vehicle, user, settings)


@invitations_router.post(
    "/{invitation_id}/decline",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(401, 403, 404, 422),
    summary="Decline an invitation",
)
async def decline_invitation(
    invitation_id: IdPath, user: CurrentUser, session: SessionDep
) -> Response:
    try:
        await service.decline_invitation(session, user, invitation_id)
    except service.InvitationNotFoundError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    return Response(status_code=status.HTTP_204_NO_CONTENT)
