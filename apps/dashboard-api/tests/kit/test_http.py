import logging
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from obd2_dashboard.app import create_app
from obd2_dashboard.settings import Settings


@pytest.fixture
async def failing_app(settings: Settings) -> AsyncIterator[FastAPI]:
    app = create_app(settings)

    async def boom() -> None:
        raise RuntimeError("a bug in a handler")

    # A route of the test's own: no route of the product is meant to fail.
    app.add_api_route("/api/v1/test-boom", boom, methods=["GET"])
    async with app.router.lifespan_context(app):
        yield app


async def test_unhandled_error_is_a_json_500_with_request_id(
    failing_app: FastAPI, caplog: pytest.LogCaptureFixture
) -> None:
    transport = httpx.ASGITransport(app=failing_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        with caplog.at_level(logging.INFO, logger="obd2_dashboard"):
            response = await client.get("/api/v1/test-boom", headers={"X-Request-ID": "boom-1"})
            after = await client.get("/healthz")
    assert response.status_code == 500
    assert response.json() == {"detail": "internal server error"}
    assert response.headers["x-request-id"] == "boom-1"
    assert "a bug in a handler" not in response.text
    assert after.status_code == 200  # and it keeps serving
    [access] = [
        r for r in caplog.records if r.name == "obd2_dashboard.http" and r.levelno == logging.INFO
    ]
    assert getattr(access, "status", None) == 500
    assert getattr(access, "route", None) == "/api/v1/test-boom"
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert errors
    assert errors[0].exc_info is not None


async def test_request_id_on_errors_and_413(client: httpx.AsyncClient) -> None:
    for response in (
        await client.get("/api/v1/vehicles"),
        await client.get("/api/v1/nowhere"),
        await client.post("/api/v1/auth/login", content=b"x" * 70_000),
        await client.post("/api/v1/auth/login", content=b"{"),
    ):
        assert len(response.headers["x-request-id"]) == 32
        assert "detail" in response.json()


async def test_made_up_methods_share_one_metrics_label(client: httpx.AsyncClient) -> None:
    response = await client.request("BREW-A1B2C3", "/api/v1/vehicles")
    assert 400 <= response.status_code < 500
    assert "detail" in response.json()
    text = (await client.get("/metrics")).text
    assert "BREW-A1B2C3" not in text
    assert 'method="OTHER"' in text
