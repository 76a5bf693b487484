"""What the lifespan makes, handed to handlers as ``Annotated`` dependencies."""

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from obd2_dashboard.kit.broker import Broker
from obd2_dashboard.settings import Settings


@dataclass(slots=True)
class AppState:
    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    broker: Broker


def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.obd2
    return state


StateDep = Annotated[AppState, Depends(get_state)]


def get_settings(state: StateDep) -> Settings:
    return state.settings


def get_broker(state: StateDep) -> Broker:
    return state.broker


async def get_session(state: StateDep) -> AsyncIterator[AsyncSession]:
    # The request owns the transaction: it commits before the response is sent (scope
    # "function"), so a 2xx means the write is durable.
    async with state.sessionmaker() as session:
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        else:
            await session.commit()


SettingsDep = Annotated[Settings, Depends(get_settings)]
BrokerDep = Annotated[Broker, Depends(get_broker)]
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
