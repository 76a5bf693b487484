"""Sends queued alert deliveries (webhook, MQTT) with bounded, exponentially spaced retries.

Runs as loops of the worker process. A delivery is leased before it is sent (its
``next_attempt_at`` pushed past the send's timeout), so several workers never send one twice at
once, and a worker that dies mid-send leaves it due again when the lease runs out.
"""

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import timedelta

from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from obd2_dashboard.alerts.firing import check_silence
from obd2_dashboard.alerts.repository import DeliveryRepository
from obd2_dashboard.alerts.schemas import (
    MQTT_NOT_SET,
    MQTT_UNAVAILABLE,
    NO_HTTP_RESPONSE,
    NO_WEBHOOK,
    NOT_RESOLVED,
    REFUSED_BY_POLICY,
    UNKNOWN_CHANNEL,
    http_error,
)
from obd2_dashboard.kit.db import session_scope, utcnow
from obd2_dashboard.kit.outbound import (
    OutboundClient,
    OutboundFailedError,
    OutboundPolicy,
    OutboundRefusedError,
    UnresolvableHostError,
)
from obd2_dashboard.kit.security import sign
from obd2_dashboard.kit.version import VERSION
from obd2_dashboard.mqtt.publisher import MqttPublisher, MqttUnavailableError
from obd2_dashboard.mqtt.topics import Topics
from obd2_dashboard.settings import Settings

log = logging.getLogger("obd2_dashboard.alerts")

SIGNATURE_HEADER = "X-OBD2-Signature"
EVENT_HEADER = "X-OBD2-Event"
DELIVERY_HEADER = "X-OBD2-Delivery"
MAX_BACKOFF_S = 3600.0
_CLAIM_BATCH = 20

SENT = Counter("obd2_alert_deliveries_total", "Alert delivery attempts", ["channel", "outcome"])


def signature(secret: str, body: str) -> str:
    """The value of ``X-OBD2-Signature``: ``sha256=`` and the hex HMAC-SHA256 of the body."""
    return "sha256=" + sign(secret.encode(), body)


@dataclass(frozen=True, slots=True)
class Job:
    id: int
    channel: str
    event: str
    body: str
    attempts: int
    vehicle_id: int
    url: str | None
    secret: str | None


@dataclass(frozen=True, slots=True)
class Outcome:
    status: str  # delivered, retry, failed, skipped
    error: str | None = None  # coarse: what the rule's owner sees (alerts.schemas)
    response_status: int | None = None
    detail: str | None = None  # for the operator's log only


class AlertDispatcher:
    def __init__(
        self,
        settings: Settings,
        sessionmaker: async_sessionmaker[AsyncSession],
        mqtt: MqttPublisher | None,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.mqtt = mqtt
        self.topics = Topics(settings.MQTT_TOPIC_PREFIX, settings.HA_DISCOVERY_PREFIX)
        self.timeout_s = settings.ALERT_WEBHOOK_TIMEOUT_S
        self.max_attempts = settings.ALERT_WEBHOOK_MAX_ATTEMPTS
        self.backoff_s = settings.ALERT_WEBHOOK_BACKOFF_S
        self.interval_s = settings.ALERT_DELIVERY_INTERVAL_S
        self.silence_interval_s = settings.ALERT_SILENCE_INTERVAL_S
        self.outbound = OutboundClient(
            OutboundPolicy(settings.outbound_allow_networks),
            timeout_s=self.timeout_s,
            user_agent=f"obd2-dashboard/{VERSION}",
        )

    async def close(self) -> None:
        await self.outbound.aclose()

    def retry_delay_s(self, attempts: int) -> float:
        delay: float = self.backoff_s * 2.0 ** max(0, attempts - 1)
        return min(delay, MAX_BACKOFF_S)

    async def run(self, stop: asyncio.Event) -> None:
        try:
            while not stop.is_set():
                try:
                    while await self.dispatch_once() >= _CLAIM_BATCH:
                        pass
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.warning("alert delivery loop: %s", type(exc).__name__)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.interval_s)
        finally:
            await self.close()

    async def run_silence_checks(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                async with session_scope(self.sessionmaker) as session:
                    await check_silence(session)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("silence check: %s", type(exc).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.silence_interval_s)

    async def dispatch_once(self) -> int:
        """Sends every due delivery (up to a batch); returns how many it attempted."""
        now = utcnow()
        lease_until = now + timedelta(seconds=self.timeout_s + 30)
        async with session_scope(self.sessionmaker) as session:
            claimed = await DeliveryRepository(session).claim_due(now, lease_until, _CLAIM_BATCH)
            jobs = [
                Job(
                    id=d.id,
                    channel=d.channel,
                    event=d.event,
                    body=d.body,
                    attempts=d.attempts,
                    vehicle_id=a.vehicle_id,
                    url=r.webhook_url if r is not None else None,
                    secret=r.webhook_secret if r is not None else None,
                )
                for d, a, r in claimed
            ]
        if not jobs:
            return 0
        outcomes = await asyncio.gather(*(self._send(job) for job in jobs))
        async with session_scope(self.sessionmaker) as session:
            repo = DeliveryRepository(session)
            for job, outcome in zip(jobs, outcomes, strict=True):
                delivery = await repo.get(job.id)
                if delivery is None:
                    continue  # its alert was deleted with the vehicle meanwhile
                status = outcome.status
                if status == "retry" and job.attempts >= self.max_attempts:
                    status = "failed"
                delivery.status = "pending" if status == "retry" else status
                delivery.last_error = outcome.error[:300] if outcome.error else None
                delivery.response_status = outcome.response_status
                if status == "delivered":
                    delivery.delivered_at = utcnow()
                if status == "retry":
                    delivery.next_attempt_at = utcnow() + timedelta(
                        seconds=self.retry_delay_s(job.attempts)
                    )
                SENT.labels(job.channel, status).inc()
                if status == "failed":
                    log.warning(
                        "alert delivery failed for good",
                        extra={
                            "delivery": job.id,
                            "channel": job.channel,
                            "error": outcome.error,
                            "detail": outcome.detail,
                        },
                    )
        return len(jobs)

    async def _send(self, job: Job) -> Outcome:
        if job.channel == "webhook":
            return await self._send_webhook(job)
        if job.channel == "mqtt":
            return await self._send_mqtt(job)
        return Outcome("failed", UNKNOWN_CHANNEL, detail=job.channel)

    async def _send_webhook(self, job: Job) -> Outcome:
        if not job.url:
            return Outcome("failed", NO_WEBHOOK)
        headers = {
            "Content-Type": "application/json",
            EVENT_HEADER: f"alert.{job.event}",
            DELIVERY_HEADER: str(job.id),
        }
        if job.secret:
            headers[SIGNATURE_HEADER] = signature(job.secret, job.body)
        try:
            response = await self.outbound.post(job.url, job.body.encode(), headers)
        except OutboundRefusedError as exc:
            # Saved before the policy (or the operator's allow list) changed, or its name now
            # resolves elsewhere (DNS rebinding): nothing was sent, and retrying will not help.
            log.warning("webhook refused by the outbound policy: %s", exc.reason)
            return Outcome("failed", REFUSED_BY_POLICY, detail=exc.reason)
        except UnresolvableHostError as exc:
            return Outcome("retry", NOT_RESOLVED, detail=str(exc))
        except OutboundFailedError as exc:
            return Outcome("retry", NO_HTTP_RESPONSE, detail=exc.detail)
        code = response.status
        if 200 <= code < 300:
            return Outcome("delivered", None, code)
        # The receiver refused this request itself, or redirected it (redirects are never
        # followed: the new address was not checked): sending it again will not change that.
        permanent = 300 <= code < 500 and code not in (408, 425, 429)
        return Outcome("failed" if permanent else "retry", http_error(code), code)

    async def _send_mqtt(self, job: Job) -> Outcome:
        if self.mqtt is None:
            return Outcome("skipped", MQTT_NOT_SET)
        try:
            await self.mqtt.publish(self.topics.events(job.vehicle_id), job.body)
        except MqttUnavailableError as exc:
            return Outcome("retry", MQTT_UNAVAILABLE, detail=str(exc)[:300])
        return Outcome("delivered")
