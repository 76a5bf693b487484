"""Every API answer is uncacheable and never type-sniffed; the docs page loads nothing from
another origin."""

import re
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from obd2_dashboard.app import create_app
from obd2_dashboard.settings import Settings
from tests.conftest import SESSION_SECRET

_ID = re.compile(r"\{[^}]+\}")


def _assert_api_headers(response: httpx.Response) -> None:
    where = f"{response.request.method} {response.request.url.path} → {response.status_code}"
    assert response.headers.get("cache-control") == "no-store", where
    assert response.headers.get("x-content-type-options") == "nosniff", where


async def test_every_api_response_has_no_store_and_nosniff(
    app: FastAPI, client: httpx.AsyncClient, alice: httpx.AsyncClient
) -> None:
    document = (await client.get("/api/v1/openapi.json")).json()
    checked = 0
    for template, operations in document["paths"].items():
        path = _ID.sub("1", template)  # nobody's: 401 anonymous, 404 (never a stream) signed in
        for method in operations:
            for caller in (client, alice):
                response = await caller.request(method.upper(), path)
                _assert_api_headers(response)
                checked += 1
    assert checked > 60
    # What no route answers itself: other middleware, app-wide handlers, unknown paths.
    others = [
        await client.get("/healthz"),
        await client.get("/readyz"),
        await client.get("/metrics"),
        await client.get("/api/v1/openapi.json"),
        await client.get("/api/v1/docs"),
        await client.get("/api/v1/no-such-route"),
        await client.put("/api/v1/auth/login"),  # 405
        await client.post("/api/v1/auth/login", content=b"{not json"),  # 422
        await client.post("/api/v1/auth/login", json={"email": "a@b.c", "password": "nope"}),
        await alice.post("/api/v1/vehicles", content=b"x" * (65 * 1024)),  # 413
    ]
    assert {r.status_code for r in others} >= {200, 401, 404, 405, 413, 422}
    for response in others:
        _assert_api_headers(response)


async def test_the_web_uis_files_keep_their_cache_headers(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_text("<!doctype html><title>app</title>")
    (dist / "assets" / "index-abc123.js").write_text("console.log(1);")
    settings = Settings(
        WEB_DIST=dist,
        DATA_DIR=tmp_path / "var",
        SESSION_SECRET=SESSION_SECRET,
        DATABASE_URL=f"sqlite:///{tmp_path / 'unused.sqlite3'}",
    )
    transport = httpx.ASGITransport(app=create_app(settings))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as web:
        asset = await web.get("/assets/index-abc123.js")
        page = await web.get("/vehicles")
    assert asset.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert page.headers["cache-control"] == "no-cache"


@pytest.mark.parametrize("production", [False, True])
async def test_docs_page_loads_only_our_own_assets(settings: Settings, production: bool) -> None:
    if production:
        settings = settings.model_copy(update={"OBD2_ENV": "production"})
    transport = httpx.ASGITransport(app=create_app(settings))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as docs:
        page = await docs.get("/api/v1/docs")
        assert page.status_code == 200
        assert "swagger-ui" in page.text
        references = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", page.text)
        references += re.findall(r"""url\s*:\s*['"]([^'"]+)['"]""", page.text)
        assert len(references) >= 3, page.text
        for reference in references:
            # Same origin: a path, never a scheme or "//host".
            assert reference.startswith("/"), reference
            assert not reference.startswith("//"), reference
            assert (await docs.get(reference)).status_code == 200, reference
    csp = page.headers["content-security-policy"]
    assert "default-src 'self'" in csp
    assert "script-src 'self'" in csp
