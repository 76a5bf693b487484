"""The operator CLI: exit 0 on success, 1 on a failure it explains, 2 on bad usage."""

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, NoReturn

from obd2_dashboard import __version__
from obd2_dashboard.kit.logging import configure_logging
from obd2_dashboard.ops.check_env import check_env, parse_env_file
from obd2_dashboard.ops.errors import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, CommandError
from obd2_dashboard.settings import Settings, SettingsError, load_settings


def _fail(message: str, code: int) -> NoReturn:
    print(f"obd2-dashboard: {message}", file=sys.stderr)
    raise SystemExit(code)


def _run(coro: Coroutine[Any, Any, int]) -> int:
    return asyncio.run(coro)


# -- commands ---------------------------------------------------------------------------------
# Each command imports its module when it runs (`noqa: PLC0415`): the CLI itself loads in about a
# third of the time the ops commands and the app take, so `--help`, `check-env` and a usage error
# answer at once, and a command loads only what it uses.


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    from obd2_dashboard.ops.serve import serve  # noqa: PLC0415

    serve(settings, host=args.host, port=args.port, workers=args.workers)
    return EXIT_OK


def cmd_migrate(settings: Settings, args: argparse.Namespace) -> int:
    from obd2_dashboard.ops import commands  # noqa: PLC0415

    if args.check:
        return _run(commands.migrate_check(settings))
    return _run(commands.migrate(settings))


def cmd_create_user(settings: Settings, args: argparse.Namespace) -> int:
    from obd2_dashboard.ops import commands  # noqa: PLC0415

    if not args.password_stdin:
        _fail("create-user: --password-stdin is required (pipe the password in)", EXIT_USAGE)
    password = sys.stdin.readline().rstrip("\r\n")
    return _run(commands.create_user(settings, args.email, password, is_admin=args.admin))


def cmd_create_vehicle(settings: Settings, args: argparse.Namespace) -> int:
    from obd2_dashboard.ops import commands  # noqa: PLC0415

    return _run(
        commands.create_vehicle(settings, args.owner, args.name, args.vin, as_json=args.json)
    )


def cmd_create_device(settings: Settings, args: argparse.Namespace) -> int:
    from obd2_dashboard.ops import commands  # noqa: PLC0415

    return _run(commands.create_device(settings, args.vehicle, args.name, as_json=args.json))


def cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    from obd2_dashboard.ops.worker import run_worker  # noqa: PLC0415

    return _run(run_worker(settings))


def cmd_redis_bootstrap(settings: Settings, args: argparse.Namespace) -> int:
    from obd2_dashboard.ops import commands  # noqa: PLC0415

    return _run(commands.redis_bootstrap(settings))


def cmd_prune_samples(settings: Settings, args: argparse.Namespace) -> int:
    from obd2_dashboard.ops import commands  # noqa: PLC0415

    days = args.older_than_days or settings.RETENTION_DAYS
    if days is None or days <= 0:
        raise CommandError("give --older-than-days N (or set RETENTION_DAYS)")
    return _run(commands.prune_samples(settings, days, dry_run=args.dry_run))


def cmd_dead_letters(settings: Settings, args: argparse.Namespace) -> int:
    from obd2_dashboard.ops import commands  # noqa: PLC0415

    return _run(
        commands.dead_letters_command(
            settings, retry=args.retry, discard=args.discard, as_json=args.json
        )
    )


def cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    from obd2_dashboard.ops.demo import run_demo  # noqa: PLC0415

    return run_demo(settings, host=args.host, port=args.port, history=not args.no_history)


def cmd_import(settings: Settings, args: argparse.Namespace) -> int:
    from obd2_dashboard.imports.formats import ImportFormat  # noqa: PLC0415
    from obd2_dashboard.imports.service import ImportOptions  # noqa: PLC0415
    from obd2_dashboard.ops import commands  # noqa: PLC0415

    mapping: dict[str, str] = {}
    for given in args.map or []:
        column, sep, pid = given.rpartition("=")
        if not sep or not column or not pid:
            _fail(f"import: --map {given!r} is not COLUMN=PID", EXIT_USAGE)
        mapping[column.strip()] = pid.strip()
    start_ms = None
    if args.start is not None:
        from obd2_dashboard.imports.formats import parse_time  # noqa: PLC0415

        start_ms = parse_time(args.start)
        if start_ms is None:
            _fail(f"import: --start {args.start!r} is no time (ISO 8601 or epoch)", EXIT_USAGE)
    if args.rate_hz is not None and not 0 < args.rate_hz <= 1000:
        _fail("import: --rate-hz must be above 0 and at most 1000", EXIT_USAGE)
    options = ImportOptions(
        fmt=None if args.format is None else ImportFormat(args.format),
        mapping=mapping,
        rate_hz=args.rate_hz,
        start_ms=start_ms,
        dry_run=args.dry_run,
    )
    from obd2_dashboard.imports.service import MAX_IMPORT_BYTES  # noqa: PLC0415

    try:
        if args.file.stat().st_size > MAX_IMPORT_BYTES:
            _fail(f"import: {args.file} is larger than {MAX_IMPORT_BYTES // 2**20} MiB", 1)
        data = args.file.read_bytes()
    except OSError as exc:
        _fail(f"import: cannot read {args.file}: {exc.strerror}", EXIT_USAGE)
    return _run(
        commands.import_command(settings, args.file, data, args.vehicle, options, as_json=args.json)
    )


def cmd_check_env(settings: Settings, args: argparse.Namespace) -> int:
    return check_env(args.file)


def cmd_backup(settings: Settings, args: argparse.Namespace) -> int:
    from obd2_dashboard.ops.backup import backup  # noqa: PLC0415

    keep = args.keep if args.keep is not None else settings.BACKUP_KEEP
    return _run(backup(settings, keep=keep, pre_migration=args.pre_migration))


def cmd_restore(settings: Settings, args: argparse.Namespace) -> int:
    from obd2_dashboard.ops.pitr import parse_target_time, restore_to_time  # noqa: PLC0415
    from obd2_dashboard.ops.restore import restore  # noqa: PLC0415

    if args.to_time is not None:
        if args.file is not None or args.target_url is not None:
            _fail("restore: --to-time takes no FILE and no --target-url", EXIT_USAGE)
        if not args.yes:
            _fail("restore --to-time replaces the cluster: add --yes to go ahead", EXIT_USAGE)
        try:
            when = parse_target_time(args.to_time)
        except ValueError as exc:
            _fail(f"restore: --to-time: {exc}", EXIT_USAGE)
        return _run(restore_to_time(when, stanza=args.stanza, repo=args.repo))
    if args.file is None or args.target_url is None:
        _fail("restore: give FILE and --target-url, or --to-time", EXIT_USAGE)
    if not args.yes:
        _fail("restore replaces the database at --target-url: add --yes to go ahead", EXIT_USAGE)
    return _run(restore(settings, args.file, args.target_url))


def cmd_restore_drill(settings: Settings, args: argparse.Namespace) -> int:
    from obd2_dashboard.ops.pitr import restore_drill_from_repo  # noqa: PLC0415
    from obd2_dashboard.ops.restore import restore_drill  # noqa: PLC0415

    if args.repo is not None:
        scratch = {"scratch_parent": args.scratch_dir} if args.scratch_dir else {}
        return _run(
            restore_drill_from_repo(settings, stanza=args.stanza, repo=args.repo, **scratch)
        )
    return _run(restore_drill(settings))


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value} is below 1")
    return number


# -- parser -----------------------------------------------------------------------------------

Command = Callable[[Settings, argparse.Namespace], int]


def _id(value: str) -> int:
    # An id the database cannot hold is bad usage, not a database error.
    from obd2_dashboard.kit.schemas import MAX_ID  # noqa: PLC0415

    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
    if not 1 <= number <= MAX_ID:
        raise argparse.ArgumentTypeError(f"{value} is not an id (1 to {MAX_ID})")
    return number


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="obd2-dashboard", description="obd2-dashboard server and operator commands"
    )
    parser.add_argument("--version", action="version", version=f"obd2-dashboard {__version__}")
    parser.add_argument(
        "--env-file",
        type=Path,
        metavar="FILE",
        help="read settings from this KEY=value file first, as the systemd units do "
        "(e.g. /etc/obd2-dashboard.env); the environment's own values win",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, handler: Command, help_: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_)
        p.set_defaults(handler=handler)
        return p

    p = add("serve", cmd_serve, "run the API (what the systemd unit starts)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument(
        "--workers",
        type=_positive_int,
        default=1,
        help="worker processes (above 1 needs REDIS_URL; /metrics sums them all)",
    )

    add("worker", cmd_worker, "run the persistence worker (stream → rollups)")
    add(
        "redis-bootstrap",
        cmd_redis_bootstrap,
        "create streams, consumer groups and the schema-version key; deletes nothing",
    )

    p = add(
        "prune-samples",
        cmd_prune_samples,
        "delete raw samples older than the retention age (rollups and trips stay)",
    )
    p.add_argument("--older-than-days", type=float, metavar="N")
    p.add_argument("--dry-run", action="store_true", help="count, delete nothing")

    p = add(
        "dead-letters",
        cmd_dead_letters,
        "list the batches the worker gave up on (newest first), or retry or discard one",
    )
    action = p.add_mutually_exclusive_group()
    action.add_argument(
        "--retry", type=_id, metavar="ID", help="put its work back in the outbox (tried afresh)"
    )
    action.add_argument(
        "--discard", type=_id, metavar="ID", help="forget it (its samples stay stored)"
    )
    p.add_argument("--json", action="store_true", help='print {"count": …, "newest": […]}')

    p = add("demo", cmd_demo, "run the whole product on embedded defaults with a demo login")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument(
        "--no-history", action="store_true", help="skip storing the last 30 days of drives"
    )

    p = add(
        "import",
        cmd_import,
        "import a log (Torque CSV, CSV with a time column, GPX) as the vehicle's history",
    )
    p.add_argument("file", type=Path, metavar="FILE")
    p.add_argument("--vehicle", required=True, type=_id, metavar="ID")
    p.add_argument(
        "--format", choices=["torque-csv", "csv", "gpx"], help="default: guessed from the content"
    )
    p.add_argument("--dry-run", action="store_true", help="read and count, store nothing")
    p.add_argument(
        "--map",
        action="append",
        metavar="COLUMN=PID",
        help="store the column under this PID name (repeatable)",
    )
    p.add_argument(
        "--rate-hz", type=float, metavar="N", help="rows per second of a log with no time column"
    )
    p.add_argument("--start", metavar="TIME", help="time of the first row, with --rate-hz")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")

    p = add("migrate", cmd_migrate, "apply database migrations up to head (never drops data)")
    p.add_argument("--check", action="store_true", help="exit 0 at head, 1 when not")

    p = add("create-user", cmd_create_user, "create a user; the password is read from stdin")
    p.add_argument("--email", required=True)
    p.add_argument("--password-stdin", action="store_true")
    p.add_argument("--admin", action="store_true")

    p = add("create-vehicle", cmd_create_vehicle, "create a vehicle for a user")
    p.add_argument("--owner", required=True, metavar="EMAIL")
    p.add_argument("--name", required=True)
    p.add_argument("--vin")
    p.add_argument("--json", action="store_true", help='print {"vehicle_id": …}')

    p = add("create-device", cmd_create_device, "create a device; prints its token once")
    p.add_argument("--vehicle", required=True, type=_id, metavar="ID")
    p.add_argument("--name", required=True)
    p.add_argument("--json", action="store_true", help='print {"device_id": …, "token": …}')

    p = add(
        "check-env", cmd_check_env, "check the environment file systemd reads (exit 1: warnings)"
    )
    p.add_argument("--file", type=Path, default=Path("/etc/obd2-dashboard.env"))

    p = add("backup", cmd_backup, "pg_dump -Fc into BACKUP_DIR, verified; prunes old ones")
    p.add_argument("--keep", type=_positive_int, help="backups to keep (default: BACKUP_KEEP)")
    p.add_argument(
        "--pre-migration",
        action="store_true",
        help="mark it as taken before a migration: retention keeps the newest of these",
    )

    p = add(
        "restore",
        cmd_restore,
        "restore a pg_dump backup into the database at --target-url, "
        "or the whole cluster to a time through pgBackRest (--to-time)",
    )
    p.add_argument("file", type=Path, metavar="FILE", nargs="?")
    p.add_argument("--target-url", metavar="URL")
    p.add_argument(
        "--to-time",
        metavar="TIME",
        help="point-in-time recovery: ISO 8601 with a UTC offset; PostgreSQL stopped, as postgres",
    )
    p.add_argument("--stanza", default="obd2", help="pgBackRest stanza (default: obd2)")
    p.add_argument(
        "--repo", type=_positive_int, help="pgBackRest repository (default: the first that has it)"
    )
    p.add_argument("--yes", action="store_true", help="confirm replacing that database")

    p = add(
        "restore-drill",
        cmd_restore_drill,
        "restore the newest backup into a scratch database, check it, drop it; "
        "with --repo: pgBackRest's repository into a scratch cluster",
    )
    p.add_argument(
        "--repo",
        type=_positive_int,
        help="drill from this pgBackRest repository (2: off-site) instead of the pg_dump files",
    )
    p.add_argument("--stanza", default="obd2", help="pgBackRest stanza (default: obd2)")
    p.add_argument(
        "--scratch-dir",
        type=Path,
        help="with --repo: where the scratch cluster goes, with room for the database "
        "(default: /var/tmp)",
    )
    return parser


def _load_env_file(path: Path) -> None:
    """Sets the file's variables that the environment does not set already.

    The operator runs a command with the settings the units run with; a variable set by hand for
    one command (``LOG_LEVEL=DEBUG obd2-dashboard …``) still wins over the file.
    """
    try:
        text = path.read_text()
    except OSError as exc:
        _fail(f"cannot read {path}: {exc.strerror}", EXIT_USAGE)
    values, problems = parse_env_file(text)
    for problem in problems:
        print(f"obd2-dashboard: {path}: {problem}", file=sys.stderr)
    for key, value in values.items():
        os.environ.setdefault(key, value)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.env_file is not None:
        _load_env_file(args.env_file)
    try:
        settings = load_settings()
    except SettingsError as exc:
        _fail(str(exc), EXIT_USAGE)
    configure_logging(settings.LOG_LEVEL, settings.log_format.value)
    handler: Command = args.handler
    try:
        return handler(settings, args)
    except CommandError as exc:
        _fail(str(exc), EXIT_FAILURE)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        logging.getLogger("obd2_dashboard.cli").debug("command failed", exc_info=exc)
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        _fail(f"{args.command} failed: {type(exc).__name__}: {first}", EXIT_FAILURE)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(main())
