"""MAP_TILE_URL: checked at start, handed to the web UI, and followed by the page's CSP."""

from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from obd2_dashboard.app import create_app
from obd2_dashboard.maps.tiles import tile_image_source
from obd2_dashboard.settings import Settings
from obd2_dashboard.web.endpoints import CONTENT_SECURITY_POLICY
from tests.conftest import SESSION_SECRET, World


def _img_src(csp: str) -> str:
    (directive,) = [d.strip() for d in csp.split(";") if d.strip().startswith("img-src ")]
    return directive


async def test_the_ui_is_told_the_default_tiles_and_their_credit(world: World) -> None:
    await world.user("driver@example.com")
    user = await world.login("driver@example.com")
    response = await user.get("/api/v1/map")
    await user.aclose()
    assert response.status_code == 200
    assert response.json() == {
        "tile_url": "https://tile.openstreetmap.org/{z}/{x}/{y}.png",
        "attribution": "© OpenStreetMap contributors",
    }
    assert (await world.client.get("/api/v1/map")).status_code == 401


async def test_an_empty_setting_means_no_tiles(settings: Settings, world: World) -> None:
    settings.MAP_TILE_URL = ""
    await world.user("driver@example.com")
    user = await world.login("driver@example.com")
    response = await user.get("/api/v1/map")
    await user.aclose()
    assert response.json() == {"tile_url": None, "attribution": ""}


@pytest.mark.parametrize(
    "url",
    [
        "ftp://tiles.example.org/{z}/{x}/{y}.png",
        "https://tiles.example.org/{z}/{x}.png",
        "tiles.example.org/{z}/{x}/{y}.png",
        "https://tiles.example.org/{z}/{x}/{y}.png; script-src *",
    ],
)
def test_a_tile_url_that_cannot_work_stops_the_start(url: str) -> None:
    with pytest.raises(ValidationError, match="MAP_TILE_URL"):
        Settings(MAP_TILE_URL=url)


def test_the_csp_source_of_a_template() -> None:
    assert tile_image_source("https://tile.openstreetmap.org/{z}/{x}/{y}.png") == (
        "https://tile.openstreetmap.org"
    )
    assert tile_image_source("https://{s}.tiles.example.org:8443/{z}/{x}/{y}.png") == (
        "https://*.tiles.example.org:8443"
    )
    assert tile_image_source("") is None


@pytest.fixture
def dist(tmp_path: Path) -> Path:
    root = tmp_path / "dist"
    root.mkdir()
    (root / "index.html").write_text("<!doctype html><title>app</title>")
    return root


async def _index_csp(tmp_path: Path, dist: Path, tile_url: str) -> str:
    settings = Settings(
        WEB_DIST=dist,
        DATA_DIR=tmp_path / "var",
        SESSION_SECRET=SESSION_SECRET,
        DATABASE_URL=f"sqlite:///{tmp_path / 'unused.sqlite3'}",
        MAP_TILE_URL=tile_url,
    )
    transport = httpx.ASGITransport(app=create_app(settings))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        response = await client.get("/vehicles/1/trips/2")
    assert response.status_code == 200
    return response.headers["content-security-policy"]


async def test_the_page_csp_follows_the_tile_setting(tmp_path: Path, dist: Path) -> None:
    default = await _index_csp(tmp_path, dist, "https://tile.openstreetmap.org/{z}/{x}/{y}.png")
    assert default == CONTENT_SECURITY_POLICY
    assert _img_src(default) == "img-src 'self' data: https://tile.openstreetmap.org"
    other = await _index_csp(tmp_path, dist, "https://maps.example.net/tiles/{z}/{x}/{y}.png")
    assert _img_src(other) == "img-src 'self' data: https://maps.example.net"
    assert "openstreetmap" not in other
    none = await _index_csp(tmp_path, dist, "")
    assert _img_src(none) == "img-src 'self' data:"
