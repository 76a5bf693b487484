import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

from tests.conftest import PASSWORD, Served, World
from tests.live.sse import SseEvent, next_event, sse_events
from tests.vehicles.test_sharing import share_and_accept


@dataclass(frozen=True, slots=True)
class Viewer:
    client: httpx.AsyncClient
    vehicle: int
    token: str


@pytest.fixture
async def viewer(served: Served) -> AsyncIterator[Viewer]:
    client, vehicle, token = await _setup(served)
    try:
        yield Viewer(client, vehicle, token)
    finally:
        await client.aclose()


async def _setup(served: Served) -> tuple[httpx.AsyncClient, int, str]:
    transport = httpx.ASGITransport(app=served.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as setup_client:
        world = World(served.app, setup_client)
        user = await world.user("viewer@example.com")
        vehicle = await world.vehicle(user)
        _, token = await world.device(vehicle)
    client = httpx.AsyncClient(base_url=served.url, timeout=10)
    login = await client.post(
        "/api/v1/auth/login", json={"email": "viewer@example.com", "password": PASSWORD}
    )
    assert login.status_code == 200
    client.headers["X-CSRF-Token"] = login.json()["csrf_token"]
    return client, vehicle, token


async def _ingest(client: httpx.AsyncClient, token: str, seqs: range) -> None:
    now = int(time.time() * 1000)
    response = await client.post(
        "/api/v1/ingest",
        json={
            "samples": [{"seq": s, "ts": now + s, "pid": "RPM", "value": float(s)} for s in seqs]
        },
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200, response.text


async def test_sse_delivers_samples_and_resumes_without_gap(viewer: Viewer) -> None:
    client, token = viewer.client, viewer.token
    url = f"/api/v1/streams/vehicles/{viewer.vehicle}"
    async with client.stream("GET", url) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["x-accel-buffering"] == "no"
        events = sse_events(response)
        await next_event(events, "comment")  # connected
        await _ingest(client, token, range(0, 3))
        received = [await next_event(events, "sample") for _ in range(3)]
        assert [e.json()["seq"] for e in received] == [0, 1, 2]
        assert received[0].json()["pid"] == "RPM"
        resume_from = received[1].id
        assert resume_from is not None
        await response.aclose()

        # While disconnected, more samples arrive; resuming after seq 1 gives 2..5 once each.
        await _ingest(client, token, range(3, 6))
        headers = {"Last-Event-ID": resume_from}
        async with client.stream("GET", url, headers=headers) as resumed:
            events = sse_events(resumed)
            got = [(await next_event(events, "sample")).json()["seq"] for _ in range(4)]
            assert got == [2, 3, 4, 5]
            await _ingest(client, token, range(6, 7))
            assert (await next_event(events, "sample")).json()["seq"] == 6


async def test_sse_sends_reset_for_unknown_resume_ids(viewer: Viewer) -> None:
    url = f"/api/v1/streams/vehicles/{viewer.vehicle}"
    for bad in ("garbage", "1-0.x", "99999999999999-0.0"):
        async with viewer.client.stream("GET", url, headers={"Last-Event-ID": bad}) as response:
            assert response.status_code == 200
            event = await next_event(sse_events(response), "reset")
            assert event.json()["reason"]
    # A resume id older than everything retained, after samples were trimmed away: reset.
    await _ingest(viewer.client, viewer.token, range(0, 1))
    async with viewer.client.stream("GET", url, headers={"Last-Event-ID": "1-0.0"}) as response:
        event = await next_event(sse_events(response), "reset")
        assert "retained" in event.json()["reason"]


async def test_sse_heartbeat_and_auth(served: Served, viewer: Viewer) -> None:
    served.app.state.obd2.settings.SSE_HEARTBEAT_S = 0.2
    url = f"/api/v1/streams/vehicles/{viewer.vehicle}"
    async with viewer.client.stream("GET", url) as response:
        events = sse_events(response)
        await next_event(events, "comment")
        keepalive = await next_event(events, "comment", timeout=3)
        assert keepalive.comments == ["keepalive"]
    async with httpx.AsyncClient(base_url=served.url) as anonymous:
        assert (await anonymous.get(url)).status_code == 401
    missing = await viewer.client.get("/api/v1/streams/vehicles/987654")
    assert missing.status_code == 404


async def test_open_streams_are_counted(viewer: Viewer) -> None:
    client = viewer.client
    url = f"/api/v1/streams/vehicles/{viewer.vehicle}"

    async def gauge() -> float:
        text = (await client.get("/metrics")).text
        for line in text.splitlines():
            if line.startswith('obd2_live_streams_open{transport="sse"}'):
                return float(line.split()[-1])
        return 0.0

    before = await gauge()
    async with client.stream("GET", url) as response:
        events = sse_events(response)  # kept: dropping the parser would close the response
        await next_event(events, "comment")
        assert await gauge() == before + 1
    for _ in range(100):
        if await gauge() == before:
            break
        await asyncio.sleep(0.05)
    assert await gauge() == before


async def _ends(events: AsyncIterator[SseEvent], timeout: float = 10) -> None:
    async def drain() -> None:
        async for _ in events:
            pass

    await asyncio.wait_for(drain(), timeout)


# Far longer than the deadline the tests below give a stream to end: what ends it is the
# revocation event, not the periodic re-check.
RECHECK_S = 300.0
ENDS_WITHIN_S = 3.0


async def test_signing_out_ends_open_streams(served: Served, viewer: Viewer) -> None:
    served.app.state.obd2.settings.LIVE_ACCESS_RECHECK_S = RECHECK_S
    url = f"/api/v1/streams/vehicles/{viewer.vehicle}"
    csrf = viewer.client.headers["X-CSRF-Token"]
    async with viewer.client.stream("GET", url) as response:
        events = sse_events(response)
        await next_event(events, "comment")
        await _ingest(viewer.client, viewer.token, range(0, 2))
        assert (await next_event(events, "sample")).json()["seq"] == 0
        # Signed out elsewhere (another tab): the stream's cookie no longer opens a session.
        cookies = dict(viewer.client.cookies)
        async with httpx.AsyncClient(base_url=served.url, cookies=cookies) as other_tab:
            out = await other_tab.post("/api/v1/auth/logout", headers={"X-CSRF-Token": csrf})
            assert out.status_code == 204, out.text
        await _ends(events, ENDS_WITHIN_S)


async def test_a_withdrawn_share_ends_open_streams(served: Served, viewer: Viewer) -> None:
    served.app.state.obd2.settings.LIVE_ACCESS_RECHECK_S = RECHECK_S
    owner = viewer.client
    transport = httpx.ASGITransport(app=served.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as setup:
        await World(served.app, setup).user("guest@example.com")
    async with httpx.AsyncClient(base_url=served.url, timeout=10) as guest:
        login = await guest.post(
            "/api/v1/auth/login", json={"email": "guest@example.com", "password": PASSWORD}
        )
        assert login.status_code == 200
        guest.headers["X-CSRF-Token"] = login.json()["csrf_token"]
        await share_and_accept(owner, guest, viewer.vehicle, "guest@example.com")
        shares = (await owner.get(f"/api/v1/vehicles/{viewer.vehicle}/shares")).json()
        guest_id = shares[0]["user_id"]
        url = f"/api/v1/streams/vehicles/{viewer.vehicle}"
        async with guest.stream("GET", url) as response:
            events = sse_events(response)
            await next_event(events, "comment")
            withdrawn = await owner.delete(f"/api/v1/vehicles/{viewer.vehicle}/shares/{guest_id}")
            assert withdrawn.status_code == 204, withdrawn.text
            await _ends(events, ENDS_WITHIN_S)
        assert (await guest.get(url)).status_code == 404
