import base64
import threading
from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import select

from obd2_dashboard.auth import service
from obd2_dashboard.kit import security
from obd2_dashboard.kit.security import verify_password
from obd2_dashboard.models import User


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("", "at least 15"),
        ("password", "at least 15"),
        (" " * 8, "at least 15"),
        ("fourteen chars", "at least 15"),
        ("x" * 15, "different characters"),
        ("passwordpassword", "repeated"),
        ("P@ssw0rd P@ssw0rd!", "repeated"),
        ("abcdefabcdefabcdef", "repeated"),
        ("iloveyouforever", "too common"),  # an entry of the bundled list
        ("Correct Horse Battery Staple", "too common"),
        ("qwertyuiopasdfgh", "too common"),
        ("123456789012345", "too common"),
        ("sunshine-butterfly-2024", "too common"),
        ("a.long.email.address@example.com", "email"),
        ("ab" + "cdefghij" * 128, "at most 1024"),
    ],
)
async def test_passwords_sign_in_could_not_take_are_refused(
    app: FastAPI, password: str, message: str
) -> None:
    async with app.state.obd2.sessionmaker() as session:
        with pytest.raises(service.WeakPasswordError, match=message):
            await service.create_user(session, "a.long.email.address@example.com", password)
        assert (await session.execute(select(User))).scalars().all() == []


async def test_email_is_normalised_and_unique(app: FastAPI) -> None:
    async with app.state.obd2.sessionmaker() as session:
        longest = "".join(chr(0x41 + i % 58) for i in range(1024))
        user = await service.create_user(session, " Alice@Example.COM ", longest)
        await session.commit()
        assert user.email == "alice@example.com"
        assert user.password_hash.startswith("$argon2id$")
        assert verify_password(user.password_hash, longest)
        with pytest.raises(service.UserExistsError):
            await service.create_user(session, "ALICE@example.com", "another long passphrase")


async def test_password_hashing_runs_off_the_event_loop(
    app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    loop_thread = threading.current_thread()
    threads: list[threading.Thread] = []

    def recording(real: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any) -> Any:
            threads.append(threading.current_thread())
            return real(*args)

        return wrapper

    monkeypatch.setattr(service, "hash_password", recording(security.hash_password))
    monkeypatch.setattr(service, "verify_password", recording(security.verify_password))
    state = app.state.obd2
    async with state.sessionmaker() as session:
        await service.create_user(session, "a@example.com", "long enough passphrase")
        await session.commit()
        signed_in = await service.sign_in(
            session, state.broker, state.settings,
            email="a@example.com", password="long enough passphrase", client_ip="192.0.2.1",
        )  # fmt: skip
        assert signed_in.user.email == "a@example.com"
    assert len(threads) == 2
    assert loop_thread not in threads


# OWASP Password Storage Cheat Sheet, argon2id: any of these (memory KiB, iterations), p = 1.
OWASP_ARGON2ID = [(47104, 1), (19456, 2), (12288, 3), (9216, 4), (7168, 5)]


def _argon2_parameters(encoded: str) -> tuple[str, int, dict[str, int], bytes, bytes]:
    _, variant, version, params, salt, digest = encoded.split("$")

    def unpadded(text: str) -> bytes:
        return base64.b64decode(text + "=" * (-len(text) % 4))

    values = {k: int(v) for k, v in (p.split("=") for p in params.split(","))}
    return variant, int(version.removeprefix("v=")), values, unpadded(salt), unpadded(digest)


async def test_stored_hashes_meet_owasp_argon2id_minimums(app: FastAPI) -> None:
    async with app.state.obd2.sessionmaker() as session:
        user = await service.create_user(session, "a@example.com", "long enough passphrase")
        await session.commit()
        stored = (await session.execute(select(User.password_hash))).scalar_one()
    assert stored == user.password_hash
    variant, version, params, salt, digest = _argon2_parameters(stored)
    assert variant == "argon2id"
    assert version == 19
    assert any(params["m"] >= m and params["t"] >= t for m, t in OWASP_ARGON2ID), params
    assert params["p"] >= 1
    assert len(salt) >= 16
    assert len(digest) >= 32
    # The hash checked when the account does not exist costs the same, or timing tells.
    assert _argon2_parameters(security._DUMMY_HASH)[2] == params
