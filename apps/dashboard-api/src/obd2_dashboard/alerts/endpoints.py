from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Response, status
from fastapi.exceptions import RequestValidationError

from obd2_dashboard.alerts import service
from obd2_dashboard.alerts.firing import evaluates_from
from obd2_dashboard.alerts.schemas import (
    AlertRead,
    AlertRuleCreate,
    AlertRuleRead,
    AlertRuleUpdate,
    DeliveryRead,
    RuleDisplay,
)
from obd2_dashboard.alerts.text import ThresholdFacts, pid_label, threshold_text
from obd2_dashboard.auth.dependencies import CurrentUser
from obd2_dashboard.dependencies import OutboundPolicyDep, SessionDep
from obd2_dashboard.kit.schemas import MAX_ID, IdPath, error_responses
from obd2_dashboard.models import AlertRule, User, Vehicle
from obd2_dashboard.units.service import pid_display, threshold_in, unit_system_of
from obd2_dashboard.units.table import UnitSystem
from obd2_dashboard.vehicles.service import VehicleNotFoundError

router = APIRouter(tags=["alerts"])

_NotFound = (VehicleNotFoundError, service.RuleNotFoundError, service.AlertNotFoundError)


def _not_found(exc: Exception) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, str(exc))


def _rule(rule: AlertRule, vehicle: Vehicle, user: User) -> AlertRuleRead:
    read = AlertRuleRead.model_validate(rule)
    read.evaluated_from_ts = evaluates_from(rule)
    if rule.kind == "threshold" and rule.pid is not None:
        read.unit = pid_display(rule.pid, UnitSystem.metric).unit
        shown = threshold_in(
            rule.pid, unit_system_of(user), rule.op, rule.threshold, rule.clear_threshold
        )
        read.display = RuleDisplay(
            unit=shown.unit,
            op=shown.op,
            threshold=shown.threshold,
            clear_threshold=shown.clear_threshold,
        )
    if vehicle.owner_id != user.id:
        # The webhook's URL and secret are credentials (the secret signs deliveries): the
        # owner's, not a viewer's.
        read.webhook_url = None
        read.webhook_secret = None
    return read


def _read(item: service.AlertWithDeliveries, system: UnitSystem) -> AlertRead:
    """The alert as ``system``'s reader sees it: its text is written for them, not stored."""
    alert = item.alert
    read = AlertRead.model_validate(alert)
    read.deliveries = [DeliveryRead.model_validate(d) for d in item.deliveries]
    if alert.kind == "threshold":
        read.subject_name = pid_label(alert.subject)
        if alert.op is not None and alert.threshold is not None:
            read.message = threshold_text(
                ThresholdFacts(
                    alert.subject,
                    alert.op,
                    alert.threshold,
                    alert.duration_s or 0,
                    bool(alert.while_parked),
                    alert.value,
                ),
                system,
            )
    else:
        read.subject_name = alert.subject
    return read


@router.get(
    "/vehicles/{vehicle_id}/alert-rules",
    response_model=list[AlertRuleRead],
    responses=error_responses(401, 404, 422),
)
async def list_rules(
    vehicle_id: IdPath, user: CurrentUser, session: SessionDep
) -> list[AlertRuleRead]:
    try:
        vehicle, rules = await service.list_rules(session, user, vehicle_id)
    except _NotFound as exc:
        raise _not_found(exc) from exc
    return [_rule(r, vehicle, user) for r in rules]


@router.post(
    "/vehicles/{vehicle_id}/alert-rules",
    response_model=AlertRuleRead,
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(401, 403, 404, 422),
    summary="Create an alert rule (threshold on a PID, device silence, or new DTC)",
)
async def create_rule(
    vehicle_id: IdPath,
    body: AlertRuleCreate,
    user: CurrentUser,
    session: SessionDep,
    outbound: OutboundPolicyDep,
) -> AlertRuleRead:
    try:
        vehicle, rule = await service.create_rule(session, user, vehicle_id, body, outbound)
    except _NotFound as exc:
        raise _not_found(exc) from exc
    except service.InvalidRuleError as exc:
        raise RequestValidationError(exc.errors) from exc
    return _rule(rule, vehicle, user)


@router.get(
    "/vehicles/{vehicle_id}/alert-rules/{rule_id}",
    response_model=AlertRuleRead,
    responses=error_responses(401, 404, 422),
)
async def get_rule(
    vehicle_id: IdPath, rule_id: IdPath, user: CurrentUser, session: SessionDep
) -> AlertRuleRead:
    try:
        vehicle, rule = await service.get_rule(session, user, vehicle_id, rule_id)
    except _NotFound as exc:
        raise _not_found(exc) from exc
    return _rule(rule, vehicle, user)


@router.patch(
    "/vehicles/{vehicle_id}/alert-rules/{rule_id}",
    response_model=AlertRuleRead,
    responses=error_responses(401, 403, 404, 422),
)
async def update_rule(
    vehicle_id: IdPath,
    rule_id: IdPath,
    body: AlertRuleUpdate,
    user: CurrentUser,
    session: SessionDep,
    outbound: OutboundPolicyDep,
) -> AlertRuleRead:
    try:
        vehicle, rule = await service.update_rule(
            session, user, vehicle_id, rule_id, body, outbound
        )
    except _NotFound as exc:
        raise _not_found(exc) from exc
    except service.InvalidRuleError as exc:
        raise RequestValidationError(exc.errors) from exc
    return _rule(rule, vehicle, user)


@router.delete(
    "/vehicles/{vehicle_id}/alert-rules/{rule_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(401, 403, 404, 422),
    summary="Delete a rule; its alerts stay in the history",
)
async def delete_rule(
    vehicle_id: IdPath, rule_id: IdPath, user: CurrentUser, session: SessionDep
) -> Response:
    try:
        await service.delete_rule(session, user, vehicle_id, rule_id)
    except _NotFound as exc:
        raise _not_found(exc) from exc
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/vehicles/{vehicle_id}/alerts",
    response_model=list[AlertRead],
    responses=error_responses(401, 404, 422),
    summary="Alert history by sample time, newest first; the next page: before_id = the "
    "last alert's id",
)
async def alert_history(
    vehicle_id: IdPath,
    user: CurrentUser,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    before_id: Annotated[
        int | None,
        Query(
            ge=1,
            le=MAX_ID,
            description="the last alert of the previous page: the alerts that come after it "
            "(older by fired_ts, or as old with a lower id)",
        ),
    ] = None,
    unacknowledged: bool = False,
) -> list[AlertRead]:
    try:
        items = await service.history(
            session,
            user,
            vehicle_id,
            limit=limit,
            before_id=before_id,
            unacknowledged=unacknowledged,
        )
    except _NotFound as exc:
        raise _not_found(exc) from exc
    system = unit_system_of(user)
    return [_read(item, system) for item in items]


@router.post(
    "/alerts/{alert_id}/acknowledge",
    response_model=AlertRead,
    responses=error_responses(401, 403, 404, 422),
    summary="Mark an alert as seen (idempotent)",
)
async def acknowledge(alert_id: IdPath, user: CurrentUser, session: SessionDep) -> AlertRead:
    try:
        return _read(await service.acknowledge(session, user, alert_id), unit_system_of(user))
    except _NotFound as exc:
        raise _not_found(exc) from exc
