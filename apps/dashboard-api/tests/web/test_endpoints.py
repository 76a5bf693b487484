"""The API serving the web UI's build: files, client routes, cache headers; the API untouched."""

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from obd2_dashboard.app import create_app
from obd2_dashboard.settings import Settings
from obd2_dashboard.web.endpoints import REPO_WEB, web_dist
from tests.conftest import SESSION_SECRET

INDEX = "<!doctype html><title>app</title>"
ASSET = "console.log('hashed');"


@pytest.fixture
def dist(tmp_path: Path) -> Path:
    root = tmp_path / "dist"
    (root / "assets").mkdir(parents=True)
    (root / "index.html").write_text(INDEX)
    (root / "assets" / "index-abc123.js").write_text(ASSET)
    (root / "favicon.svg").write_text("<svg/>")
    (tmp_path / "secret.txt").write_text("outside the build")
    return root


def _settings(tmp_path: Path, dist: Path | None) -> Settings:
    return Settings(
        WEB_DIST=dist,
        DATA_DIR=tmp_path / "var",
        SESSION_SECRET=SESSION_SECRET,
        DATABASE_URL=f"sqlite:///{tmp_path / 'unused.sqlite3'}",
    )


@pytest.fixture
async def web(tmp_path: Path, dist: Path) -> AsyncIterator[httpx.AsyncClient]:
    # No lifespan: nothing here touches the database, which is the point of these routes.
    app = create_app(_settings(tmp_path, dist))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


@pytest.mark.parametrize("path", ["/", "/vehicles", "/vehicles/3/history?pids=RPM&range=1h"])
async def test_client_routes_get_index_uncached(web: httpx.AsyncClient, path: str) -> None:
    response = await web.get(path)
    assert response.status_code == 200
    assert response.text == INDEX
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["cache-control"] == "no-cache"
    csp = response.headers["content-security-policy"]
    assert "default-src 'self'" in csp
    assert "script-src 'self'" in csp


async def test_hashed_assets_are_cached_for_good(web: httpx.AsyncClient) -> None:
    response = await web.get("/assets/index-abc123.js")
    assert response.status_code == 200
    assert response.text == ASSET
    assert "javascript" in response.headers["content-type"]
    assert response.headers["cache-control"] == "public, max-age=31536000, immutable"


async def test_other_files_are_revalidated(web: httpx.AsyncClient) -> None:
    response = await web.get("/favicon.svg")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-cache"


async def test_head_of_a_client_route(web: httpx.AsyncClient) -> None:
    response = await web.head("/status")
    assert response.status_code == 200
    assert response.content == b""


@pytest.mark.parametrize("path", ["/assets/index-old999.js", "/robots.txt", "/assets/nested"])
async def test_a_missing_file_is_404_not_the_app(web: httpx.AsyncClient, path: str) -> None:
    response = await web.get(path)
    assert response.status_code == 404
    assert response.json() == {"detail": "not found"}


@pytest.mark.parametrize("path", ["/..%2fsecret.txt", "/assets/..%2f..%2fsecret.txt"])
async def test_no_file_outside_the_build(web: httpx.AsyncClient, path: str) -> None:
    response = await web.get(path)
    assert "outside the build" not in response.text
    assert response.status_code == 404


@pytest.mark.parametrize(
    "path", ["/api", "/api/v1/no-such-route", "/api/v2/anything", "/healthz/extra", "/metrics/x"]
)
async def test_api_paths_keep_their_own_404(web: httpx.AsyncClient, path: str) -> None:
    response = await web.get(path)
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/json")
    assert INDEX not in response.text


async def test_api_method_errors_are_not_shadowed(web: httpx.AsyncClient) -> None:
    assert (await web.post("/api/v1/vehicles/1")).status_code == 405
    assert (await web.post("/api/v1/no-such-route")).status_code == 404


async def test_api_routes_still_answer(web: httpx.AsyncClient) -> None:
    response = await web.get("/api/v1/openapi.json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    assert "/api/v1/vehicles" in paths
    assert not any("{path" in p for p in paths)


async def test_without_a_build_client_routes_say_so(tmp_path: Path) -> None:
    empty = tmp_path / "empty-dist"
    empty.mkdir()
    app = create_app(_settings(tmp_path, empty))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as client:
        response = await client.get("/vehicles")
    assert response.status_code == 404
    assert "make web" in response.json()["detail"]


def test_web_dist_setting_wins(tmp_path: Path, dist: Path) -> None:
    assert web_dist(_settings(tmp_path, dist)) == dist


def test_default_dist_is_the_source_trees_web_app() -> None:
    assert (REPO_WEB / "package.json").is_file()
    assert (REPO_WEB / "src" / "main.ts").is_file()
