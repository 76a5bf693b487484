"""What the lifespan makes, handed to handlers as ``Annotated`` dependencies."""

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from obd2_dashboard.kit.broker import Broker
from obd2_dashboard.kit.db import session_scope
from obd2_dashboard.kit.outbound import OutboundPolicy
from obd2_dashboard.live.hub import LiveHub
from obd2_dashboard.pids.service import PidCatalogue
from obd2_dashboard.settings import Settings
from obd2_dashboard.telemetry.committer import IngestCommitter
from obd2_dashboard.telemetry.service import Pipeline


@dataclass(slots=True)
class AppState:
    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    broker: Broker
    pipeline: Pipeline
    committer: IngestCommitter
    hub: LiveHub
    catalogue: PidCatalogue


def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.obd2
    return state


# The dependencies are coroutines although they never wait: FastAPI runs a plain function
# dependency in its thread pool, a thread hop per request on the ingest path.
async def _state(request: Request) -> AppState:
    return get_state(request)


StateDep = Annotated[AppState, Depends(_state)]


async def get_settings(state: StateDep) -> Settings:
    return state.settings


async def get_broker(state: StateDep) -> Broker:
    return state.broker


async def get_pipeline(state: StateDep) -> Pipeline:
    return state.pipeline


async def get_committer(state: StateDep) -> IngestCommitter:
    return state.committer


async def get_hub(state: StateDep) -> LiveHub:
    return state.hub


async def get_outbound_policy(state: StateDep) -> OutboundPolicy:
    return OutboundPolicy(state.settings.outbound_allow_networks)


async def get_session(state: StateDep) -> AsyncIterator[AsyncSession]:
    # The request owns the transaction: it commits before the response is sent (scope
    # "function"), so a 2xx means the write is durable; after-commit work (live fan-out) runs
    # between the commit and the response.
    async with session_scope(state.sessionmaker) as session:
        yield session


SettingsDep = Annotated[Settings, Depends(get_settings)]
BrokerDep = Annotated[Broker, Depends(get_broker)]
PipelineDep = Annotated[Pipeline, Depends(get_pipeline)]
CommitterDep = Annotated[IngestCommitter, Depends(get_committer)]
HubDep = Annotated[LiveHub, Depends(get_hub)]
OutboundPolicyDep = Annotated[OutboundPolicy, Depends(get_outbound_policy)]
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
