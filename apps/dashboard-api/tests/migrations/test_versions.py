import ast
import asyncio
import re
import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect, text
from sqlalchemy.ext.asyncio import create_async_engine

from obd2_dashboard.kit.db import NAMING_CONVENTION
from obd2_dashboard.models import Base
from obd2_dashboard.ops.migrations import MIGRATIONS_DIR, alembic_config, head_revision
from obd2_dashboard.settings import async_database_url
from tests.conftest import Backend

VERSIONS = sorted((MIGRATIONS_DIR / "versions").glob("*.py"))
FILE_NAME = re.compile(r"^(\d{8})_([a-z0-9]+(?:_[a-z0-9]+)*)\.py$")
DESTRUCTIVE_OPS = {"drop_table", "drop_column", "drop_index", "drop_constraint", "rename_table"}


def test_there_are_migrations() -> None:
    assert VERSIONS


def test_exactly_one_head() -> None:
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    heads = script.get_heads()
    assert len(heads) == 1
    assert heads[0] == head_revision()
    # and every revision is on the one line down from it
    assert len(list(script.walk_revisions())) == len(VERSIONS)


@pytest.mark.parametrize("path", VERSIONS, ids=lambda p: p.name)
def test_file_names_are_date_and_slug(path: Path) -> None:
    match = FILE_NAME.match(path.name)
    assert match, f"{path.name} is not YYYYMMDD_slug.py"
    datetime.strptime(match.group(1), "%Y%m%d")  # a real date


def _upgrade_calls(path: Path) -> list[ast.Call]:
    tree = ast.parse(path.read_text())
    [upgrade] = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "upgrade"]
    return [n for n in ast.walk(upgrade) if isinstance(n, ast.Call)]


@pytest.mark.parametrize("path", VERSIONS, ids=lambda p: p.name)
def test_upgrades_never_drop(path: Path) -> None:
    for call in _upgrade_calls(path):
        name = call.func.attr if isinstance(call.func, ast.Attribute) else ""
        assert name not in DESTRUCTIVE_OPS, f"{path.name}: upgrade() calls op.{name}"
        for arg in ast.walk(call):
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                sql = arg.value.upper()
                assert not re.search(r"\b(DROP|TRUNCATE)\b", sql), f"{path.name}: {arg.value}"


def _drift(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(
        connection, opts={"compare_type": True, "target_metadata": Base.metadata}
    )
    return list(compare_metadata(context, Base.metadata))


def _names(connection: Connection) -> dict[str, list[tuple[str, str | None, list[str], str]]]:
    """Each table's (kind, name, columns, referred table) as the database reports them."""
    inspector = inspect(connection)
    found: dict[str, list[tuple[str, str | None, list[str], str]]] = {}
    for table in inspector.get_table_names():
        if table == "alembic_version":
            continue
        items = found.setdefault(table, [])
        pk = inspector.get_pk_constraint(table)
        items.append(("pk", pk.get("name"), list(pk["constrained_columns"]), ""))
        for fk in inspector.get_foreign_keys(table):
            items.append(("fk", fk["name"], fk["constrained_columns"], fk["referred_table"]))
        for uq in inspector.get_unique_constraints(table):
            items.append(("uq", uq["name"], uq["column_names"], ""))
        for ix in inspector.get_indexes(table):
            if ix.get("duplicates_constraint"):
                continue  # the index behind a unique constraint, checked as that constraint
            columns = [c for c in ix["column_names"] if c is not None]
            items.append(("ix", ix["name"], columns, ""))
    return found


def _expected_name(kind: str, table: str, columns: list[str], referred: str) -> str:
    values = {
        "table_name": table,
        "column_0_N_name": "_".join(columns),
        "referred_table_name": referred,
    }
    return NAMING_CONVENTION[kind] % values


async def test_no_drift_between_models_and_migrations(backend: Backend) -> None:
    engine = create_async_engine(async_database_url(backend.database_url))
    try:
        async with engine.connect() as connection:
            drift = await connection.run_sync(_drift)
            names = await connection.run_sync(_names)
    finally:
        await engine.dispose()
    assert drift == [], f"models and migrations differ on {backend.name}: {drift}"

    assert set(names) == {t.name for t in Base.metadata.sorted_tables}
    for table, items in names.items():
        for kind, name, columns, referred in items:
            if kind == "pk" and backend.name == "sqlite" and name is None:
                continue  # SQLite reports a primary key's name only when it parses one
            expected = _expected_name(kind, table, columns, referred)
            # An explicitly named index may say more after the conventional name (…_brin).
            assert name is not None
            assert name == expected or name.startswith(expected + "_"), (table, kind, name)


def test_models_use_the_naming_convention() -> None:
    for table in Base.metadata.sorted_tables:
        for constraint in table.constraints:
            assert constraint.name, f"unnamed constraint on {table.name}"
            kind = type(constraint).__name__
            prefix = {
                "PrimaryKeyConstraint": "pk_",
                "ForeignKeyConstraint": "fk_",
                "UniqueConstraint": "uq_",
                "CheckConstraint": "ck_",
            }[kind]
            assert str(constraint.name).startswith(prefix + table.name), constraint.name
        for index in table.indexes:
            assert str(index.name).startswith(f"ix_{table.name}_"), index.name


def test_downgrade_is_refused() -> None:
    for path in VERSIONS:
        tree = ast.parse(path.read_text())
        [downgrade] = [
            n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "downgrade"
        ]
        assert any(isinstance(n, ast.Raise) for n in ast.walk(downgrade)), path.name


def test_quarter_hour_rollups_are_filled_from_existing_minutes(tmp_path: Path) -> None:
    database = tmp_path / "upgrade.db"
    config = alembic_config(async_database_url(f"sqlite:///{database}"))
    command.upgrade(config, "20261126_alerts")
    with sqlite3.connect(database) as connection:
        connection.executemany(
            "INSERT INTO sample_rollups_1m VALUES (1, 'RPM', ?, ?, ?, ?, ?)",
            [
                (900_000, 2, 1.0, 3.0, 2.0),
                (960_000, 1, 5.0, 5.0, 5.0),
                (1_800_000, 1, 7.0, 7.0, 7.0),
            ],
        )
    command.upgrade(config, "head")
    with sqlite3.connect(database) as connection:
        rows = connection.execute(
            "SELECT bucket_ts, count, min, max, avg FROM sample_rollups_15m ORDER BY bucket_ts"
        ).fetchall()
    assert rows == [(900_000, 3, 1.0, 5.0, 3.0), (1_800_000, 1, 7.0, 7.0, 7.0)]


def _run(url: str, statements: list[str]) -> list[tuple[Any, ...]]:
    async def go() -> list[tuple[Any, ...]]:
        engine = create_async_engine(async_database_url(url))
        try:
            async with engine.begin() as connection:
                rows: list[tuple[Any, ...]] = []
                for statement in statements:
                    result = await connection.execute(text(statement))
                    if result.returns_rows:
                        rows += [tuple(row) for row in result]
                return rows
        finally:
            await engine.dispose()

    return asyncio.run(go())


def test_the_pid_catalogue_is_filled_from_existing_rollups(empty_database: str) -> None:
    config = alembic_config(async_database_url(empty_database))
    command.upgrade(config, "20261207_share_invitations")
    _run(
        empty_database,
        [
            "INSERT INTO users (id, email, password_hash, is_admin, created_at) "
            "VALUES (1, 'a@example.com', 'x', false, CURRENT_TIMESTAMP)",
            "INSERT INTO vehicles (id, owner_id, name, created_at, fuel_type) "
            "VALUES (1, 1, 'Petrol car', CURRENT_TIMESTAMP, 'petrol'), "
            "(2, 1, 'Diesel van', CURRENT_TIMESTAMP, 'diesel')",
            "INSERT INTO sample_rollups_1m (vehicle_id, pid, bucket_ts, count, min, max, avg) "
            "VALUES (1, 'RPM', 120000, 1, 1, 1, 1), (1, 'RPM', 60000, 1, 1, 1, 1), "
            "(1, 'GPS_LAT', 180000, 1, 1, 1, 1), (2, 'SPEED', 60000, 1, 1, 1, 1), "
            "(3, 'RPM', 60000, 1, 1, 1, 1)",  # a deleted vehicle's: no record
        ],
    )
    command.upgrade(config, "head")
    rows = _run(
        empty_database,
        [
            "SELECT vehicle_id, name, source, first_seen_ts FROM vehicle_pids "
            "ORDER BY vehicle_id, name",
            "SELECT id, fuel_type_source FROM vehicles ORDER BY id",
        ],
    )
    assert rows == [
        (1, "GPS_LAT", "agent", 180000),
        (1, "RPM", "obd", 60000),
        (2, "SPEED", "obd", 60000),
        (1, "default"),
        (2, "user"),
    ]
