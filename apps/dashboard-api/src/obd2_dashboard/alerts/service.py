import math
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from obd2_dashboard.alerts.repository import (
    AlertRepository,
    AlertRuleRepository,
    DeliveryRepository,
)
from obd2_dashboard.alerts.schemas import AlertRuleCreate, AlertRuleFields, AlertRuleUpdate
from obd2_dashboard.kit.db import utcnow
from obd2_dashboard.kit.outbound import (
    OutboundPolicy,
    OutboundRefusedError,
    UnresolvableHostError,
)
from obd2_dashboard.models import Alert, AlertDelivery, AlertRule, User, Vehicle
from obd2_dashboard.units.service import UnitError, threshold_to_stored
from obd2_dashboard.vehicles.service import (
    VehicleNotFoundError,
    get_owned_vehicle,
    get_vehicle,
)

_RULE_FIELDS = tuple(AlertRuleFields.model_fields)
# What decides when the rule fires: changing one restarts its evaluation from the change (the
# old condition's samples say nothing about the new one). Name, cooldown and channels do not.
_CONDITION_FIELDS = (
    "kind",
    "pid",
    "op",
    "threshold",
    "clear_threshold",
    "duration_s",
    "while_parked",
    "silence_minutes",
    "device_id",
)


class RuleNotFoundError(Exception):
    def __init__(self, rule_id: int) -> None:
        super().__init__(f"alert rule {rule_id} not found")


class AlertNotFoundError(Exception):
    def __init__(self, alert_id: int) -> None:
        super().__init__(f"alert {alert_id} not found")


class InvalidRuleError(Exception):
    """A rule that fails validation as a whole (after a partial update)."""

    def __init__(self, errors: list[Any]) -> None:
        super().__init__("invalid alert rule")
        self.errors = errors


def _apply(rule: AlertRule, data: AlertRuleFields) -> None:
    values = data.model_dump(include=set(_RULE_FIELDS))
    values["webhook_url"] = str(data.webhook_url) if data.webhook_url is not None else None
    if values["webhook_url"] and not values["webhook_secret"]:
        values["webhook_secret"] = rule.webhook_secret or secrets.token_urlsafe(32)
    for name, value in values.items():
        setattr(rule, name, value)
    rule.updated_at = utcnow()


def _now_ms() -> int:
    return int(utcnow().timestamp() * 1000)


def _invalid(field: str, message: str) -> InvalidRuleError:
    return InvalidRuleError([{"loc": ["body", field], "msg": message, "type": "value_error"}])


def _in_stored_unit(
    values: dict[str, Any], pid: str | None, unit: str | None, kind: str
) -> dict[str, Any]:
    """``values`` with the op and thresholds they carry, given in ``unit``, turned into the PID's
    stored unit (the rule keeps only that); as they are without a unit."""
    if unit is None:
        return values
    if kind != "threshold" or pid is None:
        raise _invalid("unit", f"unit is for threshold rules, not {kind}")
    try:
        stored = threshold_to_stored(
            pid,
            unit,
            values.get("op"),
            values.get("threshold"),
            values.get("clear_threshold"),
        )
    except UnitError as exc:
        raise _invalid(exc.field, str(exc)) from exc
    converted = dict(values)
    for name in ("op", "threshold", "clear_threshold"):
        if name in values:
            converted[name] = getattr(stored, name)
    return converted


def _validated(values: dict[str, Any]) -> AlertRuleFields:
    try:
        return AlertRuleFields.model_validate(values)
    except ValidationError as exc:
        raise InvalidRuleError(
            [
                {"loc": ["body", *e["loc"]], "msg": e["msg"], "type": e["type"]}
                for e in exc.errors(include_url=False, include_context=False, include_input=False)
            ]
        ) from exc


async def _check_device(session: AsyncSession, vehicle_id: int, data: AlertRuleFields) -> None:
    if data.device_id is not None and not await AlertRuleRepository(session).device_belongs(
        vehicle_id, data.device_id
    ):
        raise InvalidRuleError(
            [
                {
                    "loc": ["body", "device_id"],
                    "msg": f"device {data.device_id} is not a device of this vehicle",
                    "type": "value_error",
                }
            ]
        )


async def _check_webhook(outbound: OutboundPolicy, url: str) -> None:
    """Refuses, when the rule is saved, a webhook the delivery would refuse (it checks again)."""
    try:
        await outbound.check_url(url)
    except (OutboundRefusedError, UnresolvableHostError) as exc:
        raise InvalidRuleError(
            [{"loc": ["body", "webhook_url"], "msg": str(exc), "type": "value_error"}]
        ) from exc


async def list_rules(
    session: AsyncSession, user: User, vehicle_id: int
) -> tuple[Vehicle, Sequence[AlertRule]]:
    vehicle = await get_vehicle(session, user, vehicle_id)
    return vehicle, await AlertRuleRepository(session).list_for_vehicle(vehicle.id)


async def get_rule(
    session: AsyncSession, user: User, vehicle_id: int, rule_id: int
) -> tuple[Vehicle, AlertRule]:
    vehicle = await get_vehicle(session, user, vehicle_id)
    rule = await AlertRuleRepository(session).get_for_vehicle(vehicle.id, rule_id)
    if rule is None:
        raise RuleNotFoundError(rule_id)
    return vehicle, rule


async def _owned_rule(
    session: AsyncSession, user: User, vehicle_id: int, rule_id: int
) -> tuple[Vehicle, AlertRule]:
    vehicle = await get_owned_vehicle(session, user, vehicle_id)
    rule = await AlertRuleRepository(session).get_for_vehicle(vehicle.id, rule_id)
    if rule is None:
        raise RuleNotFoundError(rule_id)
    return vehicle, rule


async def create_rule(
    session: AsyncSession,
    user: User,
    vehicle_id: int,
    data: AlertRuleCreate,
    outbound: OutboundPolicy,
) -> tuple[Vehicle, AlertRule]:
    vehicle = await get_owned_vehicle(session, user, vehicle_id)
    fields = data.model_dump(include=set(_RULE_FIELDS))
    checked = _validated(_in_stored_unit(fields, data.pid, data.unit, data.kind))
    await _check_device(session, vehicle.id, checked)
    if checked.webhook_url is not None:
        await _check_webhook(outbound, str(checked.webhook_url))
    rule = AlertRule(vehicle_id=vehicle.id, firing=False)
    _apply(rule, checked)
    rule.evaluates_from_ts = _now_ms()
    return vehicle, await AlertRuleRepository(session).add(rule)


async def update_rule(
    session: AsyncSession,
    user: User,
    vehicle_id: int,
    rule_id: int,
    data: AlertRuleUpdate,
    outbound: OutboundPolicy,
) -> tuple[Vehicle, AlertRule]:
    vehicle, rule = await _owned_rule(session, user, vehicle_id, rule_id)
    merged = {name: getattr(rule, name) for name in _RULE_FIELDS}
    changes = data.model_dump(exclude_unset=True)
    unit = changes.pop("unit", None)
    # The figures this update gives are read in its unit; those it leaves are stored already.
    changes = _in_stored_unit(
        changes, changes.get("pid", rule.pid), unit, changes.get("kind", rule.kind)
    )
    for name in ("threshold", "clear_threshold"):
        given, kept = changes.get(name), getattr(rule, name)
        if given is not None and kept is not None and math.isclose(given, kept, rel_tol=1e-8):
            # A figure sent back as it was shown (185 °F for 85 °C) is the same one: keep it
            # exactly, so that saving a rule unchanged changes nothing about it.
            changes[name] = kept
    merged.update(changes)
    checked = _validated(merged)
    await _check_device(session, rule.vehicle_id, checked)
    # Only a URL this update sets is checked (and resolved): changing a rule's name does not
    # depend on its receiver's DNS. The delivery checks every URL again anyway.
    if changes.get("webhook_url") is not None and checked.webhook_url is not None:
        await _check_webhook(outbound, str(checked.webhook_url))
    before = {name: getattr(rule, name) for name in (*_CONDITION_FIELDS, "enabled")}
    _apply(rule, checked)
    resumed = rule.enabled and not before["enabled"]
    if resumed or any(getattr(rule, name) != before[name] for name in _CONDITION_FIELDS):
        # A resumed rule did not watch while paused; a changed one never watched as it is now.
        rule.evaluates_from_ts = _now_ms()
    await session.flush()
    return vehicle, rule


async def delete_rule(session: AsyncSession, user: User, vehicle_id: int, rule_id: int) -> None:
    _, rule = await _owned_rule(session, user, vehicle_id, rule_id)
    await AlertRuleRepository(session).delete(rule)


async def open_alert_counts(session: AsyncSession, vehicle_ids: Sequence[int]) -> dict[int, int]:
    """How many alerts are open (fired, not cleared) per vehicle; a vehicle with none: absent.
    For the vehicle reads, which show it as a badge."""
    return await AlertRepository(session).open_counts(vehicle_ids)


@dataclass(frozen=True, slots=True)
class AlertWithDeliveries:
    alert: Alert
    deliveries: Sequence[AlertDelivery]


async def _with_deliveries(
    session: AsyncSession, alerts: Sequence[Alert], *, owner: bool
) -> list[AlertWithDeliveries]:
    if not owner:
        # How (and whether) alerts reached the owner's webhook and MQTT is the owner's: a
        # viewer sees the alerts, not their deliveries.
        return [AlertWithDeliveries(a, []) for a in alerts]
    deliveries = await DeliveryRepository(session).for_alerts([a.id for a in alerts])
    by_alert: dict[int, list[AlertDelivery]] = {}
    for delivery in deliveries:
        by_alert.setdefault(delivery.alert_id, []).append(delivery)
    return [AlertWithDeliveries(a, by_alert.get(a.id, [])) for a in alerts]


async def history(
    session: AsyncSession,
    user: User,
    vehicle_id: int,
    *,
    limit: int,
    before_id: int | None,
    unacknowledged: bool,
) -> list[AlertWithDeliveries]:
    vehicle = await get_vehicle(session, user, vehicle_id)
    alerts = await AlertRepository(session).history(
        vehicle.id, limit=limit, before_id=before_id, unacknowledged=unacknowledged
    )
    return await _with_deliveries(session, alerts, owner=vehicle.owner_id == user.id)


async def acknowledge(session: AsyncSession, user: User, alert_id: int) -> AlertWithDeliveries:
    alert = await AlertRepository(session).get(alert_id)
    try:
        if alert is None:
            raise AlertNotFoundError(alert_id)
        # A viewer sees the alert and may not change it (403); to anyone else it does not exist.
        await get_owned_vehicle(session, user, alert.vehicle_id)
    except VehicleNotFoundError:
        raise AlertNotFoundError(alert_id) from None
    if alert.acknowledged_at is None:
        alert.acknowledged_at = utcnow()
        alert.acknowledged_by = user.id
        await session.flush()
    return (await _with_deliveries(session, [alert], owner=True))[0]
