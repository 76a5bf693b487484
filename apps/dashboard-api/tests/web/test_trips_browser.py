"""Trips, gauges and the vehicle card in a real browser: the trip's map (drawn with no network),
an unfinished trip, the date filter in the address, the gauges' scales and warning zones, and
this week's figures on the vehicle card; at desktop and phone sizes, with screenshots."""

import re
import time
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import Page, expect

from tests.web.browser import (
    DESKTOP,
    PHONE,
    Feeder,
    Session,
    WebStack,
    axe_violations,
    owner_api,
    screenshot,
    wait_for,
)

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("web-browser")]

SIZES = [("desktop", DESKTOP), ("phone", PHONE)]
DAY_MS = 86_400_000


def _drive(start: int, seconds: int, *, gps: bool) -> list[tuple[int, str, float]]:
    """RPM and SPEED every 2 s (and a GPS fix heading north-east), as a car in town."""
    samples: list[tuple[int, str, float]] = []
    for i in range(0, seconds, 2):
        ts = start + i * 1000
        samples += [(ts, "RPM", 1800.0 + (i % 20) * 50), (ts, "SPEED", 30.0 + (i % 30))]
        if gps:
            samples += [(ts, "GPS_LAT", 48.26 + i * 2e-5), (ts, "GPS_LON", 11.66 + i * 3e-5)]
    return samples


def _live(web: WebStack) -> bool:
    with owner_api(web) as client:
        return bool(client.get(f"/api/v1/vehicles/{web.vehicle_id}").json()["state"] == "live")


def _utc_day(ts: int) -> str:
    return datetime.fromtimestamp(ts / 1000, UTC).strftime("%Y-%m-%d")


@pytest.fixture(scope="module")
def drives(web: WebStack) -> dict[str, int]:
    """An unfinished drive with GPS ending now, and a finished one four days ago at noon."""
    now = int(time.time() * 1000)
    current_start = now - 4 * 60_000
    noon = datetime.fromtimestamp(now / 1000, UTC).replace(hour=12, minute=0, second=0)
    earlier_start = int((noon - timedelta(days=4)).timestamp() * 1000)
    web.ingest(_drive(earlier_start, 600, gps=False) + _drive(current_start, 230, gps=True))
    ids: dict[str, int] = {}
    with owner_api(web) as client:
        path = f"/api/v1/vehicles/{web.vehicle_id}/trips"

        def both() -> bool:
            trips = client.get(path).json()
            for trip in trips:
                if trip["start_ts"] == current_start and trip["track_points"] > 100:
                    ids["current"] = trip["id"]
                if trip["start_ts"] == earlier_start:
                    ids["earlier"] = trip["id"]
            return len(ids) == 2

        wait_for("both drives as trips", both)
    return {**ids, "current_start": current_start, "earlier_start": earlier_start}


@pytest.mark.parametrize(("size", "viewport"), SIZES)
def test_an_unfinished_trip_has_a_map_drawn_offline_and_no_end(
    session: Session, web: WebStack, drives: dict[str, int], size: str, viewport: dict[str, int]
) -> None:
    page = session.page(viewport=viewport, bypass_csp=True)
    # The car is still driving (a trip is "in progress" only while its vehicle is live).
    with Feeder(web):
        wait_for("the vehicle to be live", lambda: _live(web))
        page.goto(f"/vehicles/{web.vehicle_id}/trips/{drives['current']}")
        heading = page.get_by_role("heading", name=re.compile("^Trip since "))
        expect(heading).to_be_visible()
        expect(heading).to_contain_text("In progress")
        # No end time: the heading names only the start, and the duration is "so far".
        expect(page.get_by_role("heading", name=re.compile("^Trip of "))).to_have_count(0)
        expect(page.locator(".facts dt").first).to_have_text("Duration so far")

    # The track, its start and its end, drawn though every tile request was aborted.
    route = page.get_by_role("region", name="Map of the trip's track")
    expect(route.locator("path.trip-track")).to_have_count(1)
    expect(route.locator("path.trip-start")).to_have_count(1)
    expect(route.locator("path.trip-end")).to_have_count(1)
    box = route.locator("path.trip-track").bounding_box()
    assert box is not None
    assert box["width"] > 60, box
    assert box["height"] > 30, box
    # The default tiles are OpenStreetMap's, credited as its licence asks; none loaded here.
    attribution = route.locator(".leaflet-control-attribution")
    expect(attribution).to_contain_text("© OpenStreetMap contributors")
    expect(attribution.get_by_role("link", name="© OpenStreetMap contributors")).to_have_attribute(
        "href", "https://www.openstreetmap.org/copyright"
    )
    wait_for("Leaflet to ask for tiles", lambda: bool(session.watch.tiles_asked))
    expect(route.locator("img.leaflet-tile-loaded")).to_have_count(0)
    # The map fits the screen and the charts still follow it.
    expect(page.locator('.chart-card[data-pid="SPEED"] canvas').first).to_be_visible()
    overflow = page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0
    screenshot(page, f"trip-in-progress-{size}")
    assert axe_violations(page) == []


@pytest.mark.parametrize(("size", "viewport"), SIZES)
def test_the_date_filter_is_in_the_address_and_back_returns_to_it(
    session: Session, web: WebStack, drives: dict[str, int], size: str, viewport: dict[str, int]
) -> None:
    page = session.page(viewport=viewport)
    earlier_day = _utc_day(drives["earlier_start"])
    today = _utc_day(drives["current_start"])
    earlier = page.locator(f'.trip-card[data-trip="{drives["earlier"]}"]')
    current = page.locator(f'.trip-card[data-trip="{drives["current"]}"]')
    with Feeder(web):
        wait_for("the vehicle to be live", lambda: _live(web))
        page.goto(f"/vehicles/{web.vehicle_id}/trips")
        expect(current).to_be_visible()
        expect(current).to_contain_text("In progress")
    expect(earlier).to_be_visible()
    # Both CSV layouts: a column per PID, and a row per sample.
    expect(earlier.get_by_role("link", name="CSV", exact=True)).to_have_attribute(
        "href", re.compile(f"/trips/{drives['earlier']}\\.csv$")
    )
    expect(earlier.get_by_role("link", name="CSV, a row per sample")).to_have_attribute(
        "href", re.compile(f"/trips/{drives['earlier']}\\.csv\\?layout=long$")
    )

    dates = page.get_by_role("form", name="Trips by date")
    dates.get_by_label("From").fill(earlier_day)
    dates.get_by_label("To").fill(earlier_day)
    dates.get_by_role("button", name="Show trips").click()
    expect(page).to_have_url(re.compile(f"/trips\\?from={earlier_day}&to={earlier_day}$"))
    expect(earlier).to_be_visible()
    expect(current).to_have_count(0)

    dates.get_by_label("From").fill(today)
    dates.get_by_label("To").fill(today)
    dates.get_by_role("button", name="Show trips").click()
    expect(page).to_have_url(re.compile(f"from={today}&to={today}$"))
    expect(current).to_be_visible()
    expect(earlier).to_have_count(0)
    screenshot(page, f"trips-filtered-{size}")

    # Back: the first filter again, its dates in the fields; Back again: every trip.
    page.go_back()
    expect(page).to_have_url(re.compile(f"from={earlier_day}&to={earlier_day}$"))
    expect(earlier).to_be_visible()
    expect(current).to_have_count(0)
    expect(page.get_by_label("From")).to_have_value(earlier_day)
    page.go_back()
    expect(page).to_have_url(re.compile(r"/trips$"))
    expect(earlier).to_be_visible()
    expect(current).to_be_visible()
    expect(page.get_by_label("From")).to_have_value("")

    # A link with dates shows the same trips.
    page.goto(f"/vehicles/{web.vehicle_id}/trips?from={today}")
    expect(current).to_be_visible()
    expect(earlier).to_have_count(0)
    expect(page.get_by_role("button", name="All dates")).to_be_visible()


def _gauge_scale(page: Page, pid: str) -> dict[str, str]:
    gauge = page.locator(f'.gauge[data-pid="{pid}"]')
    expect(gauge).to_be_visible()
    threshold = gauge.locator("text.gauge-threshold")
    return {
        "min": gauge.locator('text[data-end="min"]').text_content() or "",
        "max": gauge.locator('text[data-end="max"]').text_content() or "",
        "threshold": (threshold.text_content() or "") if threshold.count() else "",
        "zones": str(gauge.locator("path.gauge-zone").count()),
    }


@pytest.mark.parametrize(("size", "viewport"), SIZES)
def test_gauges_have_scales_and_warning_zones_in_the_users_units(
    session: Session, web: WebStack, size: str, viewport: dict[str, int]
) -> None:
    page = session.page(viewport=viewport, bypass_csp=True)
    with Feeder(web):
        page.goto(f"/vehicles/{web.vehicle_id}")
        assert _gauge_scale(page, "RPM") == {
            "min": "0",
            "max": "8,000",
            "threshold": "6,000",
            "zones": "1",
        }
        assert _gauge_scale(page, "COOLANT_TEMP") == {
            "min": "-40",
            "max": "130",
            "threshold": "110",
            "zones": "1",
        }
        assert _gauge_scale(page, "ELM_VOLTAGE") == {
            "min": "10.0",
            "max": "16.0",
            "threshold": "11.8",
            "zones": "1",
        }
        assert _gauge_scale(page, "SPEED")["zones"] == "0"
        expect(page.locator('.gauge[data-pid="RPM"] .gauge-scale-text')).to_have_text(
            "Scale 0 to 8,000 rpm, warning above 6,000 rpm"
        )
        screenshot(page, f"live-gauges-{size}")
        assert axe_violations(page) == []
        # In °F the hot-coolant zone starts at 230 °F, on the same spot of the dial.
        with owner_api(web) as client:
            chosen = client.patch("/api/v1/me/preferences", json={"units": "imperial_us"})
            assert chosen.status_code == 200, chosen.text
        try:
            imperial = session.page(viewport=viewport)
            imperial.goto(f"/vehicles/{web.vehicle_id}")
            assert _gauge_scale(imperial, "COOLANT_TEMP") == {
                "min": "-40",
                "max": "266",
                "threshold": "230",
                "zones": "1",
            }
            assert _gauge_scale(imperial, "SPEED")["max"] == "149"
            dashes = [
                p.locator('.gauge[data-pid="COOLANT_TEMP"] path.gauge-zone').get_attribute(
                    "stroke-dasharray"
                )
                for p in (page, imperial)
            ]
            assert dashes[0] == dashes[1]
        finally:
            with owner_api(web) as client:
                client.patch("/api/v1/me/preferences", json={"units": "metric"})


@pytest.mark.parametrize(("size", "viewport"), SIZES)
def test_the_vehicle_card_shows_this_weeks_trips(
    session: Session, web: WebStack, drives: dict[str, int], size: str, viewport: dict[str, int]
) -> None:
    # The browser's week (UTC here) starts on Monday at midnight.
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    monday = int((today - timedelta(days=today.weekday())).timestamp() * 1000)
    with owner_api(web) as client:
        trips = client.get(f"/api/v1/vehicles/{web.vehicle_id}/trips?limit=500").json()
    this_week = [t for t in trips if t["start_ts"] >= monday]
    assert this_week, "the unfinished drive started this week"
    distance = sum(t["distance_km"] for t in this_week)
    litres = [t["fuel_used_l"] for t in this_week if t["fuel_used_l"] is not None]
    fuel = f"{sum(litres):.1f} L" if litres else "\u2013"  # a dash when no car told its fuel
    page = session.page(viewport=viewport, bypass_csp=True)
    page.goto("/vehicles")
    week = page.locator(".vehicle-card").first.get_by_role("region", name="This week")
    expect(week.locator('[data-week="trips"] dd')).to_have_text(str(len(this_week)))
    expect(week.locator('[data-week="distance"] dd')).to_have_text(f"{distance:.1f} km")
    expect(week.locator('[data-week="driving"] dd')).not_to_have_text("0 s")
    expect(week.locator('[data-week="fuel"] dd')).to_have_text(fuel)
    screenshot(page, f"vehicles-week-{size}")
    assert axe_violations(page) == []
