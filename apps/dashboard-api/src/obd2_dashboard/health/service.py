import asyncio
from dataclasses import dataclass, field

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from obd2_dashboard.kit.broker import Broker
from obd2_dashboard.ops.migrations import current_revision, head_revision
from obd2_dashboard.ops.redis_bootstrap import REDIS_SCHEMA_VERSION, schema_version

CHECK_TIMEOUT_S = 2.0


@dataclass(slots=True)
class Report:
    checks: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors


async def _database(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))


async def check_dependencies(engine: AsyncEngine, broker: Broker) -> Report:
    report = Report()
    db, redis = await asyncio.gather(
        asyncio.wait_for(_database(engine), CHECK_TIMEOUT_S),
        asyncio.wait_for(broker.ping(), CHECK_TIMEOUT_S),
        return_exceptions=True,
    )
    for name, outcome in (("db", db), ("redis", redis)):
        if isinstance(outcome, BaseException):
            report.checks[name] = "error"
            report.errors[name] = _describe(outcome)
        else:
            report.checks[name] = (
                "embedded" if name == "redis" and broker.kind == "embedded" else "ok"
            )
    return report


async def check_migrations(engine: AsyncEngine, report: Report) -> None:
    if "db" in report.errors:
        report.checks["migrations"] = "unknown"
        return
    try:
        current = await asyncio.wait_for(current_revision(engine), CHECK_TIMEOUT_S)
    except Exception as exc:
        report.checks["migrations"] = "error"
        report.errors["migrations"] = _describe(exc)
        return
    head = head_revision()
    if current == head:
        report.checks["migrations"] = "ok"
    else:
        report.checks["migrations"] = "pending"
        report.errors["migrations"] = f"database at {current or 'nothing'}, code expects {head}"


async def check_redis_schema(broker: Broker, report: Report) -> None:
    if "redis" in report.errors:
        report.checks["redis_schema"] = "unknown"
        return
    try:
        version = await asyncio.wait_for(schema_version(broker), CHECK_TIMEOUT_S)
    except Exception as exc:
        report.checks["redis_schema"] = "error"
        report.errors["redis_schema"] = _describe(exc)
        return
    if version is not None and version >= REDIS_SCHEMA_VERSION:
        report.checks["redis_schema"] = "ok"
    else:
        report.checks["redis_schema"] = "missing" if version is None else "outdated"
        report.errors["redis_schema"] = (
            f"Redis schema version {version}, code expects {REDIS_SCHEMA_VERSION}: "
            "run `obd2-dashboard redis-bootstrap`"
        )


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return f"no answer within {CHECK_TIMEOUT_S:g} s"
    text_ = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text_[0][:200]}" if text_ else type(exc).__name__
