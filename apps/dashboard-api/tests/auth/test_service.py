import pytest
from fastapi import FastAPI
from sqlalchemy import select

from obd2_dashboard.auth import service
from obd2_dashboard.kit.security import verify_password
from obd2_dashboard.models import User


@pytest.mark.parametrize(
    ("password", "message"),
    [("", "at least 8"), ("seven77", "at least 8"), ("x" * 1025, "at most 1024")],
)
async def test_passwords_sign_in_could_not_take_are_refused(
    app: FastAPI, password: str, message: str
) -> None:
    async with app.state.obd2.sessionmaker() as session:
        with pytest.raises(service.WeakPasswordError, match=message):
            await service.create_user(session, "a@example.com", password)
        assert (await session.execute(select(User))).scalars().all() == []


async def test_email_is_normalised_and_unique(app: FastAPI) -> None:
    async with app.state.obd2.sessionmaker() as session:
        user = await service.create_user(session, " Alice@Example.COM ", "x" * 1024)
        await session.commit()
        assert user.email == "alice@example.com"
        assert user.password_hash.startswith("$argon2id$")
        assert verify_password(user.password_hash, "x" * 1024)
        with pytest.raises(service.UserExistsError):
            await service.create_user(session, "ALICE@example.com", "another password")
