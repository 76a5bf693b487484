from typing import Annotated

from fastapi import APIRouter
from pydantic import BaseModel, Field

from obd2_dashboard.auth.dependencies import CurrentUser
from obd2_dashboard.dependencies import SettingsDep
from obd2_dashboard.kit.schemas import error_responses

router = APIRouter(tags=["maps"])


class MapTiles(BaseModel):
    tile_url: Annotated[
        str | None,
        Field(description="tile URL template ({z}/{x}/{y}, maybe {s}); null: no tiles"),
    ]
    attribution: Annotated[str, Field(description="what the tile provider asks to be credited")]


@router.get(
    "/map",
    response_model=MapTiles,
    responses=error_responses(401),
    summary="Where the map under a trip's track gets its tiles (MAP_TILE_URL) and their credit",
)
async def map_tiles(_user: CurrentUser, settings: SettingsDep) -> MapTiles:
    url = settings.MAP_TILE_URL or None
    return MapTiles(tile_url=url, attribution=settings.MAP_TILE_ATTRIBUTION if url else "")
