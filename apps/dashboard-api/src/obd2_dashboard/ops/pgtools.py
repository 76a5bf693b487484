"""PostgreSQL's own tools (pg_dump, pg_restore) and admin statements, for backup and restore.

The tools are those of the server's major version (Debian and Ubuntu install each version under
``/usr/lib/postgresql/<major>/bin``); an older pg_dump cannot dump a newer server. Passwords go
to the tools through ``PGPASSWORD``, never on a command line that ``ps`` shows.
"""

import asyncio
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import URL, make_url, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from obd2_dashboard.ops.errors import CommandError
from obd2_dashboard.settings import async_database_url

PG_VERSIONED_BIN = "/usr/lib/postgresql/{major}/bin"
MAINTENANCE_DB = "postgres"
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_$-]{0,62}$")


@dataclass(frozen=True, slots=True)
class PgTarget:
    """One database of one server, as the tools and SQLAlchemy each want it."""

    url: URL

    @classmethod
    def parse(cls, database_url: str) -> "PgTarget":
        try:
            url = make_url(database_url)
        except Exception as exc:
            raise CommandError(f"not a database URL: {exc}") from exc
        if url.get_backend_name() != "postgresql":
            raise CommandError(
                f"backups need PostgreSQL; the database URL is {url.get_backend_name()}"
            )
        if not url.database:
            raise CommandError("the database URL names no database")
        return cls(url)

    @property
    def database(self) -> str:
        assert self.url.database is not None
        return self.url.database

    def with_database(self, name: str) -> "PgTarget":
        return PgTarget(self.url.set(database=name))

    def libpq_url(self) -> str:
        """``postgresql://user@host:port/db?…`` without the password."""
        plain = self.url.set(drivername="postgresql", password=None)
        return plain.render_as_string(hide_password=False)

    def tool_env(self) -> dict[str, str]:
        env = dict(os.environ)
        if self.url.password is not None:
            env["PGPASSWORD"] = str(self.url.password)
        return env

    def sqlalchemy_url(self) -> str:
        return async_database_url(
            self.url.set(drivername="postgresql").render_as_string(hide_password=False)
        )

    def engine(self, *, autocommit: bool = False) -> AsyncEngine:
        kwargs: dict[str, object] = {"connect_args": {"timeout": 10}}
        if autocommit:
            kwargs["isolation_level"] = "AUTOCOMMIT"
        return create_async_engine(self.sqlalchemy_url(), **kwargs)

    def describe(self) -> str:
        return f"{self.url.host or 'localhost'}:{self.url.port or 5432}/{self.database}"


def quote_ident(name: str) -> str:
    if not _IDENTIFIER.match(name):
        raise CommandError(f"refusing the database name {name!r}: letters, digits, _ $ - only")
    return f'"{name}"'


async def server_major(target: PgTarget) -> int:
    engine = target.engine()
    try:
        async with engine.connect() as connection:
            number = (await connection.execute(text("SHOW server_version_num"))).scalar_one()
    except CommandError:
        raise
    except Exception as exc:
        raise CommandError(f"cannot connect to {target.describe()}: {_first_line(exc)}") from exc
    finally:
        await engine.dispose()
    return int(number) // 10000


def find_tool(name: str, major: int) -> Path:
    versioned = Path(PG_VERSIONED_BIN.format(major=major)) / name
    if versioned.is_file() and os.access(versioned, os.X_OK):
        return versioned
    found = shutil.which(name)
    if found is not None:
        tool_major = installed_major(Path(found))
        if tool_major is not None and tool_major >= major:
            return Path(found)
    raise CommandError(
        f"no {name} for PostgreSQL {major}: install postgresql-client-{major} "
        f"(an older {name} cannot read a newer server)"
    )


def installed_major(path: Path) -> int | None:
    """The major version a tool says it is (``pg_restore --version``), None if it cannot."""
    try:
        out = subprocess.run(
            [str(path), "--version"], capture_output=True, text=True, timeout=10, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r"(\d+)(?:\.\d+)?", out)
    return int(match.group(1)) if match else None


async def run_tool(
    argv: list[str], target: PgTarget, *, on_line: Callable[[str], None] | None = None
) -> tuple[int, list[str]]:
    """Runs a tool, hands each stderr line to ``on_line``; returns (exit code, stderr lines)."""
    process = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env=target.tool_env(),
    )
    assert process.stderr is not None
    lines: list[str] = []
    async for raw in process.stderr:
        line = raw.decode(errors="replace").rstrip()
        lines.append(line)
        if on_line is not None:
            on_line(line)
    return await process.wait(), lines


async def capture(argv: list[str], target: PgTarget) -> tuple[int, list[str], list[str]]:
    """Runs a tool to the end; returns (exit code, stdout lines, stderr lines)."""
    process = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=target.tool_env(),
    )
    out, err = await process.communicate()
    code = process.returncode if process.returncode is not None else -1
    return (
        code,
        out.decode(errors="replace").splitlines(),
        err.decode(errors="replace").splitlines(),
    )


# Session settings a newer pg_restore writes at the head of every restore, by the major version
# that introduced them. pg_restore 17 always sends `SET transaction_timeout = 0`, which
# PostgreSQL 16 and older refuse ("unrecognized configuration parameter"), and has no switch to
# leave it out: Debian 13's client is 17, and the compose file's server is 16.
PIPE_CHUNK = 1 << 16
NEWER_SESSION_SETTINGS = {"transaction_timeout": 17}
_HEADER_LINE = re.compile(r"^(SET |SELECT pg_catalog\.set_config|--|\\restrict |BEGIN;|$)")
_SET_LINE = re.compile(r"^SET (\w+) = ")


def settings_unknown_to(server: int) -> frozenset[str]:
    return frozenset(name for name, since in NEWER_SESSION_SETTINGS.items() if since > server)


def without_header_settings(script: bytes, unknown: frozenset[str]) -> tuple[bytes, bool]:
    """Drops ``SET name = …;`` lines for the ``unknown`` settings from the head of a restore
    script (the session settings before the first statement); returns the rest and whether the
    head has ended. Data lines are never touched: only the head is read."""
    kept: list[bytes] = []
    lines = script.split(b"\n")
    for index, raw in enumerate(lines):
        line = raw.decode(errors="replace")
        if not _HEADER_LINE.match(line):
            return b"\n".join([*kept, *lines[index:]]), True
        setting = _SET_LINE.match(line)
        if setting is None or setting.group(1) not in unknown:
            kept.append(raw)
    return b"\n".join(kept), False


async def restore_through_psql(
    pg_restore: Path,
    psql: Path,
    restore_options: list[str],
    dump: Path,
    target: PgTarget,
    unknown: frozenset[str],
    *,
    on_line: Callable[[str], None] | None = None,
) -> tuple[int, list[str]]:
    """``pg_restore -f - | psql`` without the head's ``unknown`` settings: for a pg_restore
    newer than the server. Returns (the first failing exit code or 0, both tools' stderr)."""
    restore = await asyncio.create_subprocess_exec(
        str(pg_restore), *restore_options, "--file=-", str(dump),
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env=target.tool_env(),
    )  # fmt: skip
    load = await asyncio.create_subprocess_exec(
        str(psql), "--no-psqlrc", "--quiet", "--set=ON_ERROR_STOP=1", "--output=/dev/null",
        f"--dbname={target.libpq_url()}",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE, env=target.tool_env(),
    )  # fmt: skip
    assert restore.stdout is not None
    assert restore.stderr is not None
    assert load.stdin is not None
    assert load.stderr is not None
    lines: list[str] = []

    async def read_errors(stream: asyncio.StreamReader) -> None:
        async for raw in stream:
            line = raw.decode(errors="replace").rstrip()
            lines.append(line)
            if on_line is not None:
                on_line(line)

    async def pipe() -> None:
        assert restore.stdout is not None
        assert load.stdin is not None
        pending, in_head = b"", True
        try:
            while chunk := await restore.stdout.read(PIPE_CHUNK):
                if in_head:
                    pending += chunk
                    cut = pending.rfind(b"\n") + 1
                    head, pending = pending[:cut], pending[cut:]
                    chunk, ended = without_header_settings(head, unknown)
                    if ended:  # the rest goes through as it comes, the partial line first
                        chunk, pending, in_head = chunk + pending, b"", False
                load.stdin.write(chunk)
                await load.stdin.drain()
            load.stdin.write(pending)
        except (BrokenPipeError, ConnectionResetError):
            pass  # psql stopped at an error: its stderr says which
        finally:
            load.stdin.close()

    await asyncio.gather(pipe(), read_errors(restore.stderr), read_errors(load.stderr))
    restored, loaded = await restore.wait(), await load.wait()
    return (restored or loaded), lines


def tool_error(lines: list[str]) -> str:
    """The line that says what went wrong, out of a tool's stderr."""
    for line in lines:
        if "error" in line.lower() or "fatal" in line.lower():
            return line.strip()
    return next((line.strip() for line in reversed(lines) if line.strip()), "no message")


async def admin_execute(target: PgTarget, *statements: str) -> None:
    """Runs statements on the server's maintenance database (CREATE/ALTER/DROP DATABASE)."""
    engine = target.with_database(MAINTENANCE_DB).engine(autocommit=True)
    try:
        async with engine.connect() as connection:
            for statement in statements:
                await connection.execute(text(statement))
    finally:
        await engine.dispose()


async def database_exists(target: PgTarget) -> bool:
    engine = target.with_database(MAINTENANCE_DB).engine(autocommit=True)
    try:
        async with engine.connect() as connection:
            found = await connection.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": target.database}
            )
            return found.scalar() is not None
    finally:
        await engine.dispose()


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0][:200] if lines else type(exc).__name__
