import httpx

from obd2_dashboard.ops.migrations import head_revision


async def test_healthz_reports_each_dependency(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["db"] == "ok"
    assert body["redis"] in {"ok", "embedded"}
    assert body["version"]
    assert body["git_sha"]


async def test_readyz_checks_migrations(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json()["migrations"] == "ok"
    assert head_revision()


async def test_request_id_is_echoed_or_generated(client: httpx.AsyncClient) -> None:
    echoed = await client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert echoed.headers["x-request-id"] == "abc-123"
    generated = await client.get("/api/v1/vehicles")
    assert len(generated.headers["x-request-id"]) == 32
    forged = await client.get("/healthz", headers={"X-Request-ID": "bad id\twith tab"})
    assert forged.headers["x-request-id"] != "bad id\twith tab"


async def test_metrics_label_routes_by_template(client: httpx.AsyncClient) -> None:
    await client.get("/api/v1/vehicles/12345")
    await client.get("/api/v1/vehicles/67890")
    await client.get("/healthz")
    text = (await client.get("/metrics")).text
    assert 'route="/api/v1/vehicles/{vehicle_id}"' in text
    assert "/vehicles/12345" not in text
    assert 'route="/healthz"' not in text
