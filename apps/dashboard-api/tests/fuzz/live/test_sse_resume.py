"""Malformed SSE resume ids (`Last-Event-ID`): a 422 or a `reset` event, never a 5xx nor a
stream that breaks after its headers."""

import asyncio
import logging
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.conftest import PASSWORD, Served, World
from tests.live.sse import next_event, sse_events

TOO_LONG = "1" * 101  # the header's documented limit is 100 characters
MALFORMED = [
    "garbage",
    "-1",
    "-1-0.0",
    "1--1.0",
    "1-0.-1",
    "1-0",
    "1.0",
    ".",
    "1-0.",
    "1-0.0.0",
    "1-0.0x",
    "0x10-0.0",
    "1e3-0.0",
    "1 - 0 . 0",
    "1-0.9999999999",  # an index of ten digits
    "1-0.\u00b2",  # a superscript two: str.isdigit() says yes, int() says no
    "\u00b9\u00b2\u00b3-0.0",
    "1-\u00b2.0",
    "99999999999999999999999-0.0",  # past Redis' 64-bit ids
    "1-99999999999999999999999.0",
    "18446744073709551616-0.0",  # 2**64
    "18446744073709551615-18446744073709551615.999999999",  # the largest Redis id: ahead
    "0-0.0",
    "%00",
    "x" * 100,
]


@pytest.fixture
async def signed_in(served: Served) -> AsyncIterator[tuple[httpx.AsyncClient, int, str]]:
    transport = httpx.ASGITransport(app=served.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as setup:
        world = World(served.app, setup)
        user = await world.user("viewer@example.com")
        vehicle = await world.vehicle(user)
        _, token = await world.device(vehicle)
    async with httpx.AsyncClient(base_url=served.url, timeout=10) as client:
        login = await client.post(
            "/api/v1/auth/login", json={"email": "viewer@example.com", "password": PASSWORD}
        )
        assert login.status_code == 200
        yield client, vehicle, token


async def _ingest(client: httpx.AsyncClient, token: str, seq: int) -> None:
    sample = {"seq": seq, "ts": int(time.time() * 1000), "pid": "RPM", "value": 800.0}
    response = await client.post(
        "/api/v1/ingest", json={"samples": [sample]}, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200, response.text


async def _first_answer(client: httpx.AsyncClient, url: str, resume: bytes) -> str:
    """The status and, for a stream, the first event after ': connected'."""
    async with client.stream("GET", url, headers={b"Last-Event-ID": resume}) as response:
        if response.status_code != 200:
            await response.aread()
            assert response.status_code < 500, response.text
            assert response.json()["detail"]
            return str(response.status_code)
        events = sse_events(response)
        event = await next_event(events, "comment")
        assert event.comments[0] == "connected"
        first = await anext(events)
        return first.event


async def test_malformed_resume_ids_get_a_reset_or_a_422(
    signed_in: tuple[httpx.AsyncClient, int, str], caplog: pytest.LogCaptureFixture
) -> None:
    client, vehicle, token = signed_in
    url = f"/api/v1/streams/vehicles/{vehicle}"
    # Two entries a few milliseconds apart: resume ids can fall between, before and after them.
    async with client.stream("GET", url) as response:
        events = sse_events(response)
        await next_event(events, "comment")
        await _ingest(client, token, 1)
        await asyncio.sleep(0.01)
        await _ingest(client, token, 2)
        first = await next_event(events, "sample")
        second = await next_event(events, "sample")
    assert first.id is not None
    assert second.id is not None
    first_ms = first.id.split("-")[0]
    within = [
        f"{first_ms}-18446744073709551616.0",  # between the entries, seq past 64 bits
        f"{first_ms}-99999999999999999999.0",
        f"{first_ms}-0.999999999",
        f"{first_ms}-00000.0",  # leading zeros
        f"0000{first_ms}-0.0",
    ]
    caplog.set_level(logging.WARNING)
    answers = {}
    for value in [*MALFORMED, *within]:
        answers[value] = await _first_answer(client, url, value.encode("latin-1"))
    answers[TOO_LONG] = await _first_answer(client, url, TOO_LONG.encode())
    answers["not latin-1"] = await _first_answer(client, url, "1-0.\u00e9".encode())
    for value, answer in answers.items():
        assert answer in {"reset", "sample", "422"}, (value, answer)
    assert answers[TOO_LONG] == "422"
    assert answers["garbage"] == "reset"
    # Nothing went wrong on the server's side (a broken stream would only show in the log).
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert (await client.get("/healthz")).status_code == 200
