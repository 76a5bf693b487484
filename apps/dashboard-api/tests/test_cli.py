"""The operator CLI run as the operator runs it: a process with a clean environment."""

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from obd2_dashboard.devices.service import authenticate_device
from obd2_dashboard.kit.db import make_engine, make_sessionmaker
from obd2_dashboard.models import Device, User
from obd2_dashboard.settings import async_database_url
from tests.conftest import clean_env, closed_port_url, run_cli


@pytest.fixture
def env(empty_database: str, tmp_path: Path) -> dict[str, str]:
    return clean_env(DATABASE_URL=empty_database, DATA_DIR=str(tmp_path / "var"))


def _one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


@pytest.fixture
def migrated(env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    assert run_cli("migrate", env=env, cwd=tmp_path).returncode == 0
    return env


def test_migrate_then_check(env: dict[str, str], tmp_path: Path) -> None:
    before = run_cli("migrate", "--check", env=env, cwd=tmp_path)
    assert before.returncode == 1
    assert "head" in _one_line(before.stderr)

    first = run_cli("migrate", env=env, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "database at head" in first.stderr

    after = run_cli("migrate", "--check", env=env, cwd=tmp_path)
    assert after.returncode == 0, after.stderr

    again = run_cli("migrate", env=env, cwd=tmp_path)
    assert again.returncode == 0
    assert "already at head" in again.stderr


def test_commands_refuse_an_unmigrated_database(env: dict[str, str], tmp_path: Path) -> None:
    result = run_cli(
        "create-user", "--email", "a@example.com", "--password-stdin",
        env=env, stdin="long enough password\n", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 1
    assert "obd2-dashboard migrate" in _one_line(result.stderr)


async def test_create_user_vehicle_device(
    migrated: dict[str, str], empty_database: str, tmp_path: Path
) -> None:
    env = migrated
    user = run_cli(
        "create-user", "--email", "Me@Example.com", "--password-stdin", "--admin",
        env=env, stdin="s3cret tractor passphrase\n", cwd=tmp_path,
    )  # fmt: skip
    assert user.returncode == 0, user.stderr
    assert "s3cret" not in user.stdout + user.stderr

    duplicate = run_cli(
        "create-user", "--email", "me@example.com", "--password-stdin",
        env=env, stdin="another password\n", cwd=tmp_path,
    )  # fmt: skip
    assert duplicate.returncode == 1
    assert "already exists" in _one_line(duplicate.stderr)

    short = run_cli(
        "create-user", "--email", "short@example.com", "--password-stdin",
        env=env, stdin="short\n", cwd=tmp_path,
    )  # fmt: skip
    assert short.returncode == 1
    assert "at least 15" in _one_line(short.stderr)

    common = run_cli(
        "create-user", "--email", "common@example.com", "--password-stdin",
        env=env, stdin="passwordpassword\n", cwd=tmp_path,
    )  # fmt: skip
    assert common.returncode == 1
    assert "repeated" in _one_line(common.stderr)

    empty = run_cli(
        "create-user", "--email", "empty@example.com", "--password-stdin",
        env=env, stdin="", cwd=tmp_path,
    )  # fmt: skip
    assert empty.returncode == 1
    _one_line(empty.stderr)

    bad_email = run_cli(
        "create-user", "--email", "not-an-email", "--password-stdin",
        env=env, stdin="long enough password\n", cwd=tmp_path,
    )  # fmt: skip
    assert bad_email.returncode == 1
    assert "--email" in _one_line(bad_email.stderr)

    vehicle = run_cli(
        "create-vehicle", "--owner", "me@example.com", "--name", "My car",
        "--vin", "1HGCM82633A004352", "--json", env=env, cwd=tmp_path,
    )  # fmt: skip
    assert vehicle.returncode == 0, vehicle.stderr
    vehicle_out = json.loads(vehicle.stdout)
    assert list(vehicle_out) == ["vehicle_id"]
    assert isinstance(vehicle_out["vehicle_id"], int)

    nobody = run_cli(
        "create-vehicle", "--owner", "nobody@example.com", "--name", "Car", "--json",
        env=env, cwd=tmp_path,
    )  # fmt: skip
    assert nobody.returncode == 1
    assert "nobody@example.com" in _one_line(nobody.stderr)
    assert nobody.stdout == ""

    bad_vin = run_cli(
        "create-vehicle", "--owner", "me@example.com", "--name", "Car", "--vin", "123",
        env=env, cwd=tmp_path,
    )  # fmt: skip
    assert bad_vin.returncode == 1
    assert "--vin" in _one_line(bad_vin.stderr)

    device = run_cli(
        "create-device", "--vehicle", str(vehicle_out["vehicle_id"]), "--name", "Pi", "--json",
        env=env, cwd=tmp_path,
    )  # fmt: skip
    assert device.returncode == 0, device.stderr
    device_out = json.loads(device.stdout)
    assert sorted(device_out) == ["device_id", "token"]

    no_vehicle = run_cli(
        "create-device", "--vehicle", "999999", "--name", "Pi", "--json", env=env, cwd=tmp_path
    )
    assert no_vehicle.returncode == 1
    assert "999999" in _one_line(no_vehicle.stderr)

    # Migrating again keeps every row.
    assert run_cli("migrate", env=env, cwd=tmp_path).returncode == 0

    engine = make_engine(async_database_url(empty_database))
    try:
        async with make_sessionmaker(engine)() as session:
            found = await authenticate_device(session, device_out["token"])
            assert found is not None
            assert found.id == device_out["device_id"]
            assert found.vehicle_id == vehicle_out["vehicle_id"]
            users = (await session.execute(select(User))).scalars().all()
            assert [(u.email, u.is_admin) for u in users] == [("me@example.com", True)]
            assert await session.scalar(select(func.count()).select_from(Device)) == 1
    finally:
        await engine.dispose()


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["no-such-command"],
        ["migrate", "--nope"],
        ["create-user"],
        ["create-user", "--email", "a@example.com"],
        ["create-vehicle", "--owner", "a@example.com"],
        ["create-device", "--vehicle", "abc", "--name", "x"],
        ["create-device", "--vehicle", "0", "--name", "x"],
        ["create-device", "--vehicle", str(10**30), "--name", "x"],
        ["create-device", "--name", "x"],
        ["serve", "--port", "http"],
        ["restore", "--to-time", "2026-01-01 10:00:00", "--yes"],  # no UTC offset: whose time?
        ["restore", "--to-time", "yesterday", "--yes"],
        ["restore", "--to-time", "2026-01-01T10:00:00Z"],  # no --yes
        ["restore", "x.dump", "--to-time", "2026-01-01T10:00:00Z", "--yes"],
        ["restore", "x.dump", "--yes"],  # no --target-url
        ["restore-drill", "--repo", "0"],
    ],
    ids=lambda args: " ".join(args)[:40] or "nothing",
)
def test_bad_usage_exits_2(args: list[str], tmp_path: Path) -> None:
    env = clean_env(DATA_DIR=str(tmp_path / "var"))
    result = run_cli(*args, env=env, stdin="long enough password\n", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip()
    assert not (tmp_path / "var").exists()  # nothing was done


@pytest.mark.parametrize("args", [["migrate"], ["migrate", "--check"]], ids=" ".join)
def test_unreachable_database_is_one_line_exit_1(args: list[str], tmp_path: Path) -> None:
    env = clean_env(DATABASE_URL=closed_port_url("postgresql"))
    result = run_cli(*args, env=env, cwd=tmp_path)
    assert result.returncode == 1
    assert "failed" in _one_line(result.stderr)


def test_env_file_gives_the_settings_the_units_run_with(
    empty_database: str, tmp_path: Path
) -> None:
    # What the installed `obd2-dashboard` wrapper does: the units' settings file, read first.
    env_file = tmp_path / "obd2-dashboard.env"
    env_file.write_text(
        f"# the service's settings\nDATABASE_URL={empty_database}\n"
        f"DATA_DIR={tmp_path / 'var'}\nLOG_LEVEL=INFO\n"
    )
    env = clean_env()
    migrated = run_cli("--env-file", str(env_file), "migrate", env=env, cwd=tmp_path)
    assert migrated.returncode == 0, migrated.stderr
    check = run_cli("--env-file", str(env_file), "migrate", "--check", env=env, cwd=tmp_path)
    assert check.returncode == 0, check.stderr

    # A variable set for one command wins over the file.
    overridden = run_cli(
        "--env-file", str(env_file), "migrate", "--check",
        env={**env, "DATABASE_URL": closed_port_url("postgresql")}, cwd=tmp_path,
    )  # fmt: skip
    assert overridden.returncode != 0


def test_env_file_that_cannot_be_read_is_bad_usage(tmp_path: Path) -> None:
    result = run_cli(
        "--env-file", str(tmp_path / "missing.env"), "migrate", "--check",
        env=clean_env(), cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 2
    assert "missing.env" in _one_line(result.stderr)
