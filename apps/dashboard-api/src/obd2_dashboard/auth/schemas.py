from typing import Annotated

from pydantic import Field

from obd2_dashboard.kit.schemas import Schema

Password = Annotated[str, Field(min_length=1, max_length=1024)]


class LoginRequest(Schema):
    email: Annotated[str, Field(min_length=3, max_length=320)]
    password: Password


class UserRead(Schema):
    id: int
    email: str
    is_admin: bool


class LoginResponse(Schema):
    user: UserRead
    csrf_token: Annotated[
        str, Field(description="Send back as X-CSRF-Token on every write made with the cookie")
    ]
