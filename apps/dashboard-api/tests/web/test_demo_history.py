"""The demo's month of history in a real browser: the 30-day charts, the trips, the codes."""

import asyncio
import re
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import Page, expect

from obd2_dashboard.kit.db import make_engine, make_sessionmaker
from obd2_dashboard.ops.demo_history import SeedReport, seed_history
from obd2_dashboard.settings import async_database_url
from obd2_protocol import demo_car
from tests.web.browser import Session, WebStack, screenshot

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("web-browser")]

DAY_MS = 86_400_000


async def _seed(database_url: str, vehicle_id: int, now_ms: int) -> SeedReport:
    engine = make_engine(async_database_url(database_url))
    try:
        return await seed_history(make_sessionmaker(engine), vehicle_id, now_ms=now_ms, tz=UTC)
    finally:
        await engine.dispose()


@pytest.fixture(scope="module")
def seeded(web: WebStack) -> tuple[int, SeedReport]:
    """The demo car's last 30 days stored for the stack's vehicle, as `obd2-dashboard demo`
    stores them; (now, what was stored)."""
    now = int(time.time() * 1000)
    # Playwright's sync API runs an event loop in this thread: seed from a thread of our own.
    with ThreadPoolExecutor(1) as pool:
        report = pool.submit(asyncio.run, _seed(web.database_url, web.vehicle_id, now)).result(120)
    assert report.drives >= 60
    return now, report


def _samples_shown(page: Page, pid: str) -> tuple[int, int]:
    """(samples, points) a history chart says it draws."""
    card = page.locator(f'.chart-card[data-pid="{pid}"]')
    expect(card.locator("canvas")).to_have_count(1)
    meta = card.locator(".chart-meta")
    expect(meta).to_contain_text("samples")
    text = meta.inner_text()
    samples = int(re.sub(r"[^\d]", "", text.split("samples")[0]))
    points = int(text.split("·")[1].split("points")[0].strip())
    return samples, points


def test_the_30_day_history_shows_the_month_of_drives(
    session: Session, web: WebStack, seeded: tuple[int, SeedReport]
) -> None:
    page = session.page()
    page.goto(f"/vehicles/{web.vehicle_id}/history?pids=SPEED,FUEL_RATE,COOLANT_TEMP&range=30d")
    expect(page.get_by_role("button", name="30d", exact=True)).to_have_attribute(
        "aria-pressed", "true"
    )
    for pid in ("SPEED", "FUEL_RATE", "COOLANT_TEMP"):
        samples, points = _samples_shown(page, pid)
        # Drives on most of the 30 days (the coolant read every 10 s, the speed every 2 s).
        assert samples > 3_000, pid
        assert points >= 60, pid
    expect(page.locator('.chart-card[data-pid="SPEED"] .chart-meta')).to_contain_text(
        "minute rollups"
    )
    screenshot(page, "demo-history-30d")

    page.get_by_role("button", name="7d", exact=True).click()
    samples, points = _samples_shown(page, "SPEED")
    assert samples > 1_000
    assert points >= 14


def test_the_trips_page_lists_the_months_drives_with_their_tracks(
    session: Session, web: WebStack, seeded: tuple[int, SeedReport]
) -> None:
    now, _ = seeded
    page = session.page()
    page.goto(f"/vehicles/{web.vehicle_id}/trips")
    cards = page.locator(".trip-card")
    expect(cards).to_have_count(20)
    newest = cards.first
    expect(newest).to_contain_text("L/100km")
    expect(newest.get_by_role("link", name="GPX track")).to_be_visible()
    page.get_by_role("button", name="Show older trips").click()
    expect(cards).to_have_count(40)
    screenshot(page, "demo-trips")

    # A weekday ten days ago: the commute there and back, at least.
    day = datetime.fromtimestamp((now - 10 * DAY_MS) / 1000, UTC).date()
    while day.weekday() >= 5:
        day -= timedelta(days=1)
    dates = page.get_by_role("form", name="Trips by date")
    dates.get_by_label("From").fill(day.isoformat())
    dates.get_by_label("To").fill(day.isoformat())
    dates.get_by_role("button", name="Show trips").click()
    expect(page.get_by_role("button", name="All dates")).to_be_visible()
    expect(cards.filter(has_text="13.1 km")).to_have_count(2)
    commute = cards.filter(has_text="13.1 km").first
    expect(commute.get_by_role("link", name="GPX track")).to_be_visible()

    commute.get_by_role("heading").get_by_role("link").click()
    expect(page.get_by_role("heading", name=re.compile("^Trip of "))).to_be_visible()
    expect(page.locator('.chart-card[data-pid="SPEED"] canvas').first).to_be_visible()
    expect(page.locator('.chart-card[data-pid="RPM"] canvas').first).to_be_visible()
    screenshot(page, "demo-trip-detail")


def test_the_trouble_codes_page_tells_the_codes_story(
    session: Session, web: WebStack, seeded: tuple[int, SeedReport]
) -> None:
    page = session.page()
    page.goto(f"/vehicles/{web.vehicle_id}/dtcs")
    active = page.get_by_role("region", name=re.compile("^Active"))
    expect(active.get_by_role("heading", name=demo_car.DTC_CODE)).to_be_visible()
    expect(active).to_contain_text("Catalyst")
    expect(page.get_by_role("region", name="Cleared earlier")).to_contain_text(demo_car.DTC_CODE)
