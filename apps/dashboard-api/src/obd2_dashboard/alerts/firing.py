"""Deciding when a rule fires or clears, and queueing what must be sent about it.

Everything here runs inside the caller's transaction: the alert, the rule's firing state and the
deliveries owed commit together (or not at all), and the delivery loop sends them afterwards.
Each rule's row is locked while it is decided, so two workers never fire one episode twice.
"""

import json
import time
from collections.abc import Iterable, Mapping
from datetime import datetime

from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncSession

from obd2_dashboard.alerts.evaluation import PARKED_PIDS, Condition, Episode, find_episodes
from obd2_dashboard.alerts.repository import (
    AlertRepository,
    AlertRuleRepository,
    DeliveryRepository,
    SampleWindowRepository,
)
from obd2_dashboard.alerts.text import ThresholdFacts, threshold_text
from obd2_dashboard.kit.db import utcnow
from obd2_dashboard.models import ROLLUP_BUCKET_MS, Alert, AlertDelivery, AlertRule
from obd2_dashboard.units.service import owner_unit_system, pid_display
from obd2_dashboard.units.table import UnitSystem, tidy

# How far before the touched minutes the window starts, beyond the rule's duration: enough to
# see an episode's start and the SPEED/RPM readings that say whether the car was parked.
LOOKBACK_MS = 5 * 60_000
# An episode that fired longer ago than this (a spool replayed days later) goes into the history
# but is not sent: nobody wants yesterday's coolant alarm on their phone.
MAX_DELIVERY_AGE_MS = 24 * 3600 * 1000

FIRED = Counter("obd2_alerts_fired_total", "Alerts fired", ["kind"])
CLEARED = Counter("obd2_alerts_cleared_total", "Alerts cleared", ["kind"])


def epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def evaluates_from(rule: AlertRule) -> int:
    """Epoch ms from which the rule reads samples: when it was made, or when its condition last
    changed or it was resumed. An alert is never dated before the rule asked for it."""
    if rule.evaluates_from_ts is not None:
        return rule.evaluates_from_ts
    return epoch_ms(rule.created_at)


def condition_for(rule: AlertRule) -> Condition:
    # The schema guarantees these for threshold rules.
    assert rule.pid is not None
    assert rule.threshold is not None
    clear = rule.threshold if rule.clear_threshold is None else rule.clear_threshold
    duration_ms = rule.duration_s * 1000
    return Condition(
        pid=rule.pid,
        op="above" if rule.op == "above" else "below",
        threshold=rule.threshold,
        clear_threshold=clear,
        duration_ms=duration_ms,
        while_parked=rule.while_parked,
        # A value seen, then nothing for a while: the episode ended unless the rule's own duration
        # is longer than that (a slow PID polled every few minutes).
        max_gap_ms=max(120_000, duration_ms),
    )


def _shown(alert: Alert, system: UnitSystem) -> dict[str, object]:
    """The alert's unit, and its value in the owner's unit system, for a threshold alert."""
    if alert.kind != "threshold":
        return {}
    stored = pid_display(alert.subject, UnitSystem.metric)
    display = pid_display(alert.subject, system)
    value = None if alert.value is None else tidy(display.value(alert.value))
    return {
        "unit": stored.unit,
        "display": {"value": value, "unit": display.unit, "units": system.value},
    }


def alert_body(alert: Alert, event: str, system: UnitSystem = UnitSystem.metric) -> str:
    """What webhooks and MQTT get. ``value`` is in the PID's stored unit (``unit``);
    ``display`` is the same in the vehicle owner's unit system, which ``message`` uses too."""
    return json.dumps(
        {
            "type": f"alert.{event}",
            "vehicle_id": alert.vehicle_id,
            "alert": {
                "id": alert.id,
                "vehicle_id": alert.vehicle_id,
                "rule_id": alert.rule_id,
                "rule_name": alert.rule_name,
                "kind": alert.kind,
                "subject": alert.subject,
                "message": alert.message,
                "value": alert.value,
                "started_ts": alert.started_ts,
                "fired_ts": alert.fired_ts,
                "cleared_ts": alert.cleared_ts,
                **_shown(alert, system),
            },
        },
        separators=(",", ":"),
    )


async def _enqueue(session: AsyncSession, rule: AlertRule, alert: Alert, event: str) -> None:
    now = utcnow()
    happened = alert.cleared_ts if event == "cleared" and alert.cleared_ts else alert.fired_ts
    stale = epoch_ms(now) - happened
    status, reason = "pending", None
    if stale > MAX_DELIVERY_AGE_MS:
        status, reason = "skipped", "older than 24 h when detected"
    channels = []
    if rule.webhook_url:
        channels.append("webhook")
    if rule.mqtt:
        channels.append("mqtt")
    deliveries = DeliveryRepository(session)
    system = UnitSystem.metric
    if channels and alert.kind == "threshold":
        system = await owner_unit_system(session, alert.vehicle_id)
    for channel in channels:
        await deliveries.add(
            AlertDelivery(
                alert_id=alert.id,
                channel=channel,
                event=event,
                body=alert_body(alert, event, system),
                status=status,
                last_error=reason,
                next_attempt_at=now,
            )
        )


async def _fire(
    session: AsyncSession,
    rule: AlertRule,
    *,
    subject: str,
    message: str,
    value: float | None,
    started_ts: int,
    fired_ts: int,
    cleared_ts: int | None,
    condition: Condition | None = None,
) -> Alert:
    alert = await AlertRepository(session).add(
        Alert(
            op=None if condition is None else condition.op,
            threshold=None if condition is None else condition.threshold,
            duration_s=None if condition is None else rule.duration_s,
            while_parked=None if condition is None else rule.while_parked,
            vehicle_id=rule.vehicle_id,
            rule_id=rule.id,
            rule_name=rule.name,
            kind=rule.kind,
            subject=subject,
            message=message[:300],
            value=value,
            started_ts=started_ts,
            fired_ts=fired_ts,
            cleared_ts=cleared_ts,
        )
    )
    await _enqueue(session, rule, alert, "fired")
    FIRED.labels(rule.kind).inc()
    return alert


async def _clear(session: AsyncSession, rule: AlertRule, alert: Alert, cleared_ts: int) -> None:
    alert.cleared_ts = max(cleared_ts, alert.fired_ts)
    await session.flush()
    await _enqueue(session, rule, alert, "cleared")
    CLEARED.labels(rule.kind).inc()


def threshold_message(
    rule: AlertRule, condition: Condition, value: float | None, system: UnitSystem
) -> str:
    """``Engine coolant temperature 230 °F above 221 °F for 30 s``: the text stored with the
    alert and sent to webhooks and MQTT, in the owner's unit system. Readers of the history get
    it in their own units (``alerts.text``)."""
    return threshold_text(
        ThresholdFacts(
            condition.pid,
            condition.op,
            condition.threshold,
            rule.duration_s,
            rule.while_parked,
            value,
        ),
        system,
    )


async def _reconcile(
    session: AsyncSession, rule: AlertRule, condition: Condition, ep: Episode
) -> None:
    alerts = AlertRepository(session)
    existing = await alerts.overlapping(rule.id, ep.start_ts, ep.end_ts)
    if existing is not None:
        # The same episode seen again (a replayed batch, a later window): at most it has ended.
        if ep.end_ts is not None and existing.cleared_ts is None:
            await _clear(session, rule, existing, ep.end_ts)
        return
    if ep.fire_ts is None:
        return
    if await alerts.fired_near(rule.id, ep.fire_ts, rule.cooldown_s * 1000):
        return
    await _fire(
        session,
        rule,
        subject=condition.pid,
        message=threshold_message(
            rule, condition, ep.fire_value, await owner_unit_system(session, rule.vehicle_id)
        ),
        value=ep.fire_value,
        started_ts=ep.start_ts,
        fired_ts=ep.fire_ts,
        cleared_ts=ep.end_ts,
        condition=condition,
    )


async def evaluate_touched(
    session: AsyncSession, touched: Mapping[int, Iterable[tuple[str, int]]]
) -> None:
    """Evaluates the threshold rules of each vehicle over the minutes a batch touched.

    ``touched`` maps a vehicle to the (PID, minute) buckets its new samples fell in. Each rule
    reads every raw row of its window in time order, so late, out-of-order or replayed samples
    give the same answer as samples that arrived in order, and evaluating twice fires nothing
    twice (an episode that already has an alert is recognised by overlap).
    """
    rules_repo = AlertRuleRepository(session)
    window = SampleWindowRepository(session)
    alerts = AlertRepository(session)
    for vehicle_id in sorted(touched):
        buckets = list(touched[vehicle_id])
        pids = {pid for pid, _ in buckets}
        rules = await rules_repo.lock_enabled(vehicle_id, "threshold")
        for rule in rules:
            watched = {rule.pid, *PARKED_PIDS} if rule.while_parked else {rule.pid}
            minutes = [minute for pid, minute in buckets if pid in watched]
            if not minutes or rule.pid is None or not (pids & watched):
                continue
            condition = condition_for(rule)
            # Nothing from before the rule was set counts: a rule made at 12:54 never fires an
            # alert dated 12:49 (nor begins an episode there).
            start = max(min(minutes) - condition.duration_ms - LOOKBACK_MS, evaluates_from(rule))
            end = max(minutes) + ROLLUP_BUCKET_MS + condition.duration_ms + LOOKBACK_MS
            if start >= end:
                continue
            rows = await window.rows(vehicle_id, sorted(p for p in watched if p), start, end)
            for episode in find_episodes(rows, condition):
                await _reconcile(session, rule, condition, episode)
            rule.firing = await alerts.has_open(rule.id)
    await session.flush()


async def check_silence(session: AsyncSession, now: datetime | None = None) -> int:
    """Fires silence rules whose device (or vehicle) sent nothing for their minutes; clears
    those whose data came back. Returns how many alerts it fired."""
    now_ms = epoch_ms(now or utcnow())
    alerts = AlertRepository(session)
    fired = 0
    for rule, last_seen in await AlertRuleRepository(session).lock_enabled_silence():
        if last_seen is None or rule.silence_minutes is None:
            continue  # never heard from: nothing has gone silent yet
        # Silence counts from the rule's start at the earliest: a rule made while the car had
        # been quiet for hours fires its minutes after it was made, not dated hours back.
        seen_ms = max(epoch_ms(last_seen), evaluates_from(rule))
        limit_ms = rule.silence_minutes * 60_000
        silent = now_ms - seen_ms >= limit_ms
        for alert in await alerts.open_for_rule(rule.id):
            if not silent or alert.started_ts < seen_ms:
                await _clear(session, rule, alert, seen_ms)
        if silent and not await alerts.has_open(rule.id):
            fire_ts = seen_ms + limit_ms
            if not await alerts.fired_near(rule.id, fire_ts, rule.cooldown_s * 1000):
                what = f"device {rule.device_id}" if rule.device_id is not None else "vehicle"
                await _fire(
                    session,
                    rule,
                    subject=what,
                    message=f"no data from the {what} for {rule.silence_minutes} min",
                    value=None,
                    started_ts=seen_ms,
                    fired_ts=fire_ts,
                    cleared_ts=None,
                )
                fired += 1
        rule.firing = await alerts.has_open(rule.id)
    await session.flush()
    return fired


async def raise_dtc_alert(
    session: AsyncSession, vehicle_id: int, code: str, kind: str
) -> list[Alert]:
    """Fires the vehicle's DTC rules for a trouble code seen for the first time (or again after
    it was cleared). Call it in the transaction that records the code; the same code within a
    rule's cooldown fires nothing more. Returns the alerts it created."""
    now_ms = int(time.time() * 1000)
    alerts = AlertRepository(session)
    created = []
    for rule in await AlertRuleRepository(session).lock_enabled(vehicle_id, "dtc"):
        if await alerts.fired_near(rule.id, now_ms, max(rule.cooldown_s * 1000, 1), code):
            continue
        created.append(
            await _fire(
                session,
                rule,
                subject=code[:64],
                message=f"new {kind} trouble code {code}",
                value=None,
                started_ts=now_ms,
                fired_ts=now_ms,
                # A code is an event, not a state: the alert is over once it is told.
                cleared_ts=now_ms,
            )
        )
    await session.flush()
    return created
