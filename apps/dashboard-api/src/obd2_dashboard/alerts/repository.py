from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import and_, bindparam, exists, func, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from obd2_dashboard.models import Alert, AlertDelivery, AlertRule, Device, Vehicle


class AlertRuleRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def list_for_vehicle(self, vehicle_id: int) -> Sequence[AlertRule]:
        result = await self.session.execute(
            select(AlertRule).where(AlertRule.vehicle_id == vehicle_id).order_by(AlertRule.id)
        )
        return result.scalars().all()

    async def get_for_vehicle(self, vehicle_id: int, rule_id: int) -> AlertRule | None:
        result = await self.session.execute(
            select(AlertRule).where(AlertRule.id == rule_id, AlertRule.vehicle_id == vehicle_id)
        )
        return result.scalar_one_or_none()

    async def add(self, rule: AlertRule) -> AlertRule:
        self.session.add(rule)
        await self.session.flush()
        return rule

    async def delete(self, rule: AlertRule) -> None:
        await self.session.delete(rule)
        await self.session.flush()

    async def lock_enabled(
        self, vehicle_id: int, kind: str, pids: Sequence[str] | None = None
    ) -> Sequence[AlertRule]:
        """The vehicle's enabled rules of a kind, locked (in id order) until the commit."""
        query = select(AlertRule).where(
            AlertRule.vehicle_id == vehicle_id, AlertRule.kind == kind, AlertRule.enabled
        )
        if pids is not None:
            query = query.where(AlertRule.pid.in_(pids))
        result = await self.session.execute(query.order_by(AlertRule.id).with_for_update())
        return result.scalars().all()

    async def lock_enabled_silence(self) -> Sequence[tuple[AlertRule, datetime | None]]:
        """Every enabled silence rule with the newest sample time it watches, locked."""
        result = await self.session.execute(
            select(AlertRule, Device.last_seen_at, Vehicle.last_seen_at)
            .join(Vehicle, Vehicle.id == AlertRule.vehicle_id)
            .outerjoin(Device, Device.id == AlertRule.device_id)
            .where(AlertRule.kind == "silence", AlertRule.enabled)
            .order_by(AlertRule.id)
            .with_for_update(of=AlertRule)
        )
        rows: list[tuple[AlertRule, datetime | None]] = []
        for rule, device_seen, vehicle_seen in result.all():
            rows.append((rule, device_seen if rule.device_id is not None else vehicle_seen))
        return rows

    async def device_belongs(self, vehicle_id: int, device_id: int) -> bool:
        result = await self.session.execute(
            select(exists().where(Device.id == device_id, Device.vehicle_id == vehicle_id))
        )
        return bool(result.scalar())


class AlertRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, alert: Alert) -> Alert:
        self.session.add(alert)
        await self.session.flush()
        return alert

    async def overlapping(self, rule_id: int, start_ts: int, end_ts: int | None) -> Alert | None:
        """An alert of the rule whose episode overlaps [start_ts, end_ts] (None: open-ended)."""
        query = select(Alert).where(
            Alert.rule_id == rule_id,
            or_(Alert.cleared_ts.is_(None), Alert.cleared_ts >= start_ts),
        )
        if end_ts is not None:
            query = query.where(Alert.started_ts <= end_ts)
        result = await self.session.execute(query.order_by(Alert.started_ts).limit(1))
        return result.scalar_one_or_none()

    async def fired_near(
        self, rule_id: int, fired_ts: int, window_ms: int, subject: str | None = None
    ) -> bool:
        """Whether an alert of the rule (about ``subject``) fired within ``window_ms`` of it."""
        if window_ms <= 0:
            return False
        condition = exists().where(
            Alert.rule_id == rule_id,
            Alert.fired_ts > fired_ts - window_ms,
            Alert.fired_ts < fired_ts + window_ms,
        )
        if subject is not None:
            condition = condition.where(Alert.subject == subject)
        result = await self.session.execute(select(condition))
        return bool(result.scalar())

    async def open_for_rule(self, rule_id: int) -> Sequence[Alert]:
        result = await self.session.execute(
            select(Alert).where(Alert.rule_id == rule_id, Alert.cleared_ts.is_(None))
        )
        return result.scalars().all()

    async def has_open(self, rule_id: int) -> bool:
        result = await self.session.execute(
            select(exists().where(Alert.rule_id == rule_id, Alert.cleared_ts.is_(None)))
        )
        return bool(result.scalar())

    async def history(
        self,
        vehicle_id: int,
        *,
        limit: int,
        before_id: int | None,
        unacknowledged: bool,
    ) -> Sequence[Alert]:
        """The vehicle's alerts by sample time, newest first (ties: newest id first); with
        ``before_id``, those after that alert in this order (a keyset cursor: a page never
        repeats or skips one when alerts are added meanwhile). An alert of another vehicle as
        the cursor gives an empty page."""
        query = select(Alert).where(Alert.vehicle_id == vehicle_id)
        if before_id is not None:
            cursor = (
                select(Alert.fired_ts)
                .where(Alert.id == before_id, Alert.vehicle_id == vehicle_id)
                .scalar_subquery()
            )
            query = query.where(
                or_(
                    Alert.fired_ts < cursor,
                    and_(Alert.fired_ts == cursor, Alert.id < before_id),
                )
            )
        if unacknowledged:
            query = query.where(Alert.acknowledged_at.is_(None))
        result = await self.session.execute(
            query.order_by(Alert.fired_ts.desc(), Alert.id.desc()).limit(limit)
        )
        return result.scalars().all()

    async def open_counts(self, vehicle_ids: Sequence[int]) -> dict[int, int]:
        """How many alerts are open (fired, not cleared) per vehicle; absent: none."""
        if not vehicle_ids:
            return {}
        result = await self.session.execute(
            select(Alert.vehicle_id, func.count())
            .where(Alert.vehicle_id.in_(vehicle_ids), Alert.cleared_ts.is_(None))
            .group_by(Alert.vehicle_id)
        )
        return {int(vehicle_id): int(count) for vehicle_id, count in result.all()}

    async def get(self, alert_id: int) -> Alert | None:
        return await self.session.get(Alert, alert_id)


class DeliveryRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, delivery: AlertDelivery) -> None:
        self.session.add(delivery)

    async def for_alerts(self, alert_ids: Sequence[int]) -> Sequence[AlertDelivery]:
        if not alert_ids:
            return []
        result = await self.session.execute(
            select(AlertDelivery)
            .where(AlertDelivery.alert_id.in_(alert_ids))
            .order_by(AlertDelivery.id)
        )
        return result.scalars().all()

    async def claim_due(
        self, now: datetime, lease_until: datetime, limit: int
    ) -> Sequence[tuple[AlertDelivery, Alert, AlertRule | None]]:
        """Pending deliveries that are due, leased to this worker until ``lease_until``.

        The lease (a later ``next_attempt_at``) keeps other workers off them; if this one dies
        mid-send they become due again when it runs out.
        """
        result = await self.session.execute(
            select(AlertDelivery)
            .where(AlertDelivery.status == "pending", AlertDelivery.next_attempt_at <= now)
            .order_by(AlertDelivery.next_attempt_at, AlertDelivery.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        deliveries = result.scalars().all()
        if not deliveries:
            return []
        ids = [d.id for d in deliveries]
        await self.session.execute(
            update(AlertDelivery)
            .where(AlertDelivery.id.in_(ids))
            .values(next_attempt_at=lease_until, attempts=AlertDelivery.attempts + 1)
            .execution_options(synchronize_session=False)
        )
        rows = await self.session.execute(
            select(AlertDelivery, Alert, AlertRule)
            .join(Alert, Alert.id == AlertDelivery.alert_id)
            .outerjoin(AlertRule, AlertRule.id == Alert.rule_id)
            .where(AlertDelivery.id.in_(ids))
            .order_by(AlertDelivery.id)
            .execution_options(populate_existing=True)
        )
        return [(d, a, r) for d, a, r in rows.all()]

    async def get(self, delivery_id: int) -> AlertDelivery | None:
        return await self.session.get(AlertDelivery, delivery_id)


class SampleWindowRepository:
    """Raw rows an alert rule is evaluated over: never those of a device that uploads past data
    (an import, the demo's history), which may lie among the live ones."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def rows(
        self, vehicle_id: int, pids: Sequence[str], start: int, end: int
    ) -> list[tuple[int, str, float]]:
        statement = text(
            "SELECT ts, pid, value FROM samples WHERE vehicle_id = :vehicle_id "
            "AND pid IN :pids AND ts >= :start AND ts < :end "
            "AND device_id NOT IN (SELECT id FROM devices "
            "WHERE vehicle_id = :vehicle_id AND backfill) ORDER BY ts, pid"
        ).bindparams(
            bindparam("pids", value=list(pids), expanding=True),
            vehicle_id=vehicle_id,
            start=start,
            end=end,
        )
        result = await self.session.execute(statement)
        return [(int(r[0]), str(r[1]), float(r[2])) for r in result]
