"""Operator commands behind the CLI; each returns its exit code or raises CommandError."""

import asyncio
import json
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict
from pathlib import Path

from email_validator import EmailNotValidError, validate_email
from pydantic import TypeAdapter, ValidationError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from obd2_dashboard.auth import service as auth_service
from obd2_dashboard.devices.service import create_device_for
from obd2_dashboard.imports.formats import UnreadableLogError
from obd2_dashboard.imports.service import ImportOptions, ImportSummary, import_log
from obd2_dashboard.kit.broker import BrokerUnavailableError, make_broker
from obd2_dashboard.kit.db import make_engine, make_sessionmaker
from obd2_dashboard.models import User
from obd2_dashboard.ops.errors import EXIT_FAILURE, EXIT_OK, CommandError
from obd2_dashboard.ops.migrations import current_revision, head_revision, upgrade_head
from obd2_dashboard.ops.redis_bootstrap import RedisSchemaError, bootstrap
from obd2_dashboard.settings import Settings
from obd2_dashboard.telemetry import dead_letters, retention
from obd2_dashboard.vehicles.schemas import VehicleCreate
from obd2_dashboard.vehicles.service import create_vehicle as create_vehicle_for
from obd2_dashboard.vehicles.service import vehicle_by_id


def _print_json(value: object) -> None:
    sys.stdout.write(json.dumps(value) + "\n")
    sys.stdout.flush()


async def redis_bootstrap(settings: Settings) -> int:
    if settings.REDIS_URL is None:
        raise CommandError("REDIS_URL is not set: the embedded broker needs no bootstrap")
    broker = make_broker(settings.REDIS_URL, settings.REDIS_KEY_PREFIX)
    try:
        await broker.ping()
        report = await bootstrap(broker)
    except RedisSchemaError as exc:
        raise CommandError(str(exc)) from exc
    except BrokerUnavailableError as exc:
        raise CommandError(f"Redis is not answering: {exc}") from exc
    finally:
        await broker.close()
    created = ", ".join(report.created_groups) or "nothing (all present)"
    before = report.schema_version_before
    print(f"redis-bootstrap: created {created}", file=sys.stderr)
    print(f"redis-bootstrap: schema version {before} -> {report.schema_version}", file=sys.stderr)
    return EXIT_OK


async def prune_samples(settings: Settings, days: float, *, dry_run: bool) -> int:
    engine = make_engine(settings.database_url)
    try:
        maker = make_sessionmaker(engine)
        cutoff = int(time.time() * 1000) - int(days * retention.DAY_MS)
        if dry_run:
            count = await retention.count_older(maker, cutoff)
            print(f"prune-samples: {count} samples older than {days:g} days (dry run)")
            return EXIT_OK
        deleted = await retention.prune_samples(
            maker,
            older_than_days=days,
            progress=lambda n: print(f"prune-samples: {n} deleted …", file=sys.stderr),
        )
    finally:
        await engine.dispose()
    print(f"prune-samples: deleted {deleted} samples older than {days:g} days")
    return EXIT_OK


def prepare_embedded_storage(settings: Settings) -> None:
    if settings.DATABASE_URL is None:
        settings.DATA_DIR.mkdir(parents=True, exist_ok=True)


async def migrate(settings: Settings) -> int:
    prepare_embedded_storage(settings)
    engine = make_engine(settings.database_url)
    try:
        before = await current_revision(engine)
    finally:
        await engine.dispose()
    head = head_revision()
    if before == head:
        print(f"database already at head ({head})", file=sys.stderr)
        return EXIT_OK
    print(f"migrating database from {before or 'empty'} to {head} …", file=sys.stderr)
    await asyncio.to_thread(upgrade_head, settings.database_url)
    print(f"database at head ({head})", file=sys.stderr)
    return EXIT_OK


async def migrate_check(settings: Settings) -> int:
    engine = make_engine(settings.database_url)
    try:
        current = await current_revision(engine)
    finally:
        await engine.dispose()
    head = head_revision()
    if current == head:
        print(f"database at head ({head})", file=sys.stderr)
        return EXIT_OK
    print(f"database at {current or 'nothing'}, head is {head}", file=sys.stderr)
    return EXIT_FAILURE


async def require_head(engine: AsyncEngine) -> None:
    """CommandError unless the database is migrated to head (commands never migrate)."""
    current = await current_revision(engine)
    if current != head_revision():
        raise CommandError(
            f"the database is at {current or 'nothing'}, not at head: "
            "run `obd2-dashboard migrate` first"
        )


@asynccontextmanager
async def migrated_session(settings: Settings) -> AsyncIterator[AsyncSession]:
    """A session on a database at head; the transaction commits when the block succeeds."""
    prepare_embedded_storage(settings)
    engine = make_engine(settings.database_url)
    try:
        await require_head(engine)
        async with make_sessionmaker(engine)() as session:
            yield session
            await session.commit()
    finally:
        await engine.dispose()


def _checked_email(email: str) -> str:
    try:
        return validate_email(email, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise CommandError(f"--email {email!r} is not a valid email address: {exc}") from exc


async def create_user(settings: Settings, email: str, password: str, *, is_admin: bool) -> int:
    email = _checked_email(email)
    async with migrated_session(settings) as session:
        try:
            user = await auth_service.create_user(session, email, password, is_admin=is_admin)
        except auth_service.AuthError as exc:
            raise CommandError(str(exc)) from exc
    print(f"created user {user.email} (id {user.id}{', admin' if is_admin else ''})")
    return EXIT_OK


async def _owner(session: AsyncSession, email: str) -> User:
    user = await auth_service.user_by_email(session, email)
    if user is None:
        raise CommandError(f"no user with email {email}")
    return user


async def create_vehicle(
    settings: Settings, owner_email: str, name: str, vin: str | None, *, as_json: bool
) -> int:
    try:
        data = TypeAdapter(VehicleCreate).validate_python({"name": name, "vin": vin})
    except ValidationError as exc:
        err = exc.errors()[0]
        raise CommandError(f"--{err['loc'][0]}: {err['msg']}") from exc
    async with migrated_session(settings) as session:
        owner = await _owner(session, owner_email)
        vehicle = await create_vehicle_for(session, owner, data)
    if as_json:
        _print_json({"vehicle_id": vehicle.id})
    else:
        print(f"created vehicle {vehicle.name!r} (id {vehicle.id}) for {owner.email}")
    return EXIT_OK


async def create_device(settings: Settings, vehicle_id: int, name: str, *, as_json: bool) -> int:
    name = name.strip()
    if not name or len(name) > 100 or not name.isprintable():
        raise CommandError("--name must be 1 to 100 printable characters")
    async with migrated_session(settings) as session:
        vehicle = await vehicle_by_id(session, vehicle_id)
        if vehicle is None:
            raise CommandError(f"no vehicle with id {vehicle_id}")
        created = await create_device_for(session, vehicle, name)
    if as_json:
        _print_json({"device_id": created.device.id, "token": created.token})
    else:
        print(f"created device {name!r} (id {created.device.id}) for vehicle {vehicle_id}")
        print(f"token (shown once): {created.token}")
    return EXIT_OK


async def dead_letters_command(
    settings: Settings, *, retry: int | None, discard: int | None, as_json: bool
) -> int:
    """Lists the dead letters (newest first), or puts one back to work, or forgets one."""
    async with migrated_session(settings) as session:
        try:
            if retry is not None:
                outbox_id = await dead_letters.retry(session, retry)
                print(f"dead-letters: {retry} queued again (outbox row {outbox_id})")
                return EXIT_OK
            if discard is not None:
                await dead_letters.discard(session, discard)
                print(f"dead-letters: {discard} discarded")
                return EXIT_OK
        except dead_letters.DeadLetterNotFoundError as exc:
            raise CommandError(f"no dead letter {exc.args[0]}") from exc
        listed = await dead_letters.summary(session, newest=LISTED_DEAD_LETTERS)
    if as_json:
        _print_json(listed.as_json())
        return EXIT_OK
    for letter in listed.newest:
        print(
            f"{letter.id}\tvehicle {letter.vehicle_id}\t{letter.created_at.isoformat()}"
            f"\t{letter.attempts} tries\t{letter.error}"
        )
    shown = len(listed.newest)
    more = f" (newest {shown} shown)" if shown < listed.count else ""
    print(f"dead-letters: {listed.count} in all{more}", file=sys.stderr)
    return EXIT_OK


LISTED_DEAD_LETTERS = 1000


class _LineProgress:
    """Progress of an import on stderr, a line every few seconds (logs stay readable)."""

    EVERY_S = 2.0

    def __init__(self, total_bytes: int) -> None:
        self.total_bytes = total_bytes
        self.last = time.monotonic()

    def __call__(self, read: int, stored: int) -> None:
        now = time.monotonic()
        if now - self.last >= self.EVERY_S:
            self.last = now
            print(f"import: {read} samples read, {stored} stored …", file=sys.stderr)


def _summary_lines(summary: ImportSummary) -> list[str]:
    verb = "would store" if summary.dry_run else "stored"
    lines = [
        f"import ({summary.format}): {summary.samples_read} samples read, "
        f"{verb} {summary.stored if not summary.dry_run else summary.samples_read}, "
        f"{summary.duplicates} duplicate, "
        f"{sum(summary.skipped_rows.values())} rows and "
        f"{sum(summary.skipped_values.values())} values skipped"
    ]
    lines += [f"  skipped {n} rows: {reason}" for reason, n in summary.skipped_rows.items()]
    lines += [f"  skipped {n} values: {reason}" for reason, n in summary.skipped_values.items()]
    if summary.unknown_columns:
        lines.append("  columns left out (unknown): " + ", ".join(summary.unknown_columns))
    return lines


async def import_command(
    settings: Settings,
    path: Path,
    data: bytes,
    vehicle_id: int,
    options: ImportOptions,
    *,
    as_json: bool,
) -> int:
    prepare_embedded_storage(settings)
    engine = make_engine(settings.database_url)
    try:
        await require_head(engine)
        summary = await import_log(
            make_sessionmaker(engine), vehicle_id, data, options, _LineProgress(len(data))
        )
    except UnreadableLogError as exc:
        raise CommandError(f"import {path}: {exc}; nothing was stored") from exc
    except LookupError as exc:
        raise CommandError(str(exc)) from exc
    finally:
        await engine.dispose()
    if as_json:
        _print_json(asdict(summary))
    for line in _summary_lines(summary):
        print(line, file=sys.stderr if as_json else sys.stdout)
    return EXIT_OK
