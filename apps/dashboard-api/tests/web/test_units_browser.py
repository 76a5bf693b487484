"""Units in a real browser: a person who picks imperial reads mph, °F and miles everywhere."""

import csv
import io
import re
import time
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.web.browser import Feeder, Session, WebStack, owner_api, screenshot, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("web-browser")]

KM_PER_MILE = 1.609344
DRIVE_KMH = 100.0  # 62 mph
DRIVE_COOLANT_C = 90.0  # 194 °F


@pytest.fixture(scope="module")
def drive(web: WebStack) -> tuple[int, int]:
    """A steady drive from 20 to 15 minutes ago (a trip of its own); its (from, to)."""
    now = int(time.time() * 1000)
    start = now - 20 * 60_000
    end = now - 15 * 60_000
    samples: list[tuple[int, str, float]] = []
    for ts in range(start, end, 1000):
        samples += [
            (ts, "SPEED", DRIVE_KMH),
            (ts, "RPM", 2500.0),
            (ts, "COOLANT_TEMP", DRIVE_COOLANT_C),
        ]
    web.ingest(samples)
    return start, end


def choose_units(client: httpx.Client, units: str) -> None:
    response = client.patch("/api/v1/me/preferences", json={"units": units})
    assert response.status_code == 200, response.text


def the_drives_trip(web: WebStack, start: int) -> dict[str, float]:
    with owner_api(web) as client:
        path = f"/api/v1/vehicles/{web.vehicle_id}/trips"

        def trips() -> list[dict[str, float]]:
            found: list[dict[str, float]] = client.get(path).json()
            return [t for t in found if start <= t["start_ts"] <= start + 60_000]

        wait_for("the drive as a trip", lambda: bool(trips()))
        return trips()[0]


def hover_the_middle(page: Page, chart: str) -> None:
    over = page.locator(f"{chart} .u-over")
    over.scroll_into_view_if_needed()
    box = over.bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)


def test_a_person_who_picks_imperial_reads_mph_and_fahrenheit_everywhere(
    session: Session, web: WebStack, drive: tuple[int, int]
) -> None:
    start, end = drive
    trip = the_drives_trip(web, start)
    with owner_api(web) as client:
        choose_units(client, "metric")
    page = session.page(accept_downloads=True)

    # The choice is made on the Settings page, and kept by the server.
    page.goto("/vehicles")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Settings").click()
    form = page.get_by_role("form", name="Units")
    expect(form.get_by_role("radio", name=re.compile("^Metric"))).to_be_checked()
    expect(form).to_contain_text("100 km/h")
    form.get_by_role("radio", name=re.compile("^Imperial, US gallons")).check()
    form.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status").filter(has_text="Figures are now shown in")).to_be_visible()
    screenshot(page, "settings-units-desktop")
    page.reload()
    expect(form.get_by_role("radio", name=re.compile("^Imperial, US gallons"))).to_be_checked()

    # Live: the gauges' units, values and scales.
    with Feeder(web):
        page.goto(f"/vehicles/{web.vehicle_id}")
        speed = page.locator('.gauge[data-pid="SPEED"]')
        coolant = page.locator('.gauge[data-pid="COOLANT_TEMP"]')
        expect(speed.locator(".reading-unit")).to_have_text("mph")
        expect(coolant.locator(".reading-unit")).to_have_text("°F")
        # The feeder's coolant reads 86 to 90 °C: 187 to 194 °F.
        expect(coolant.locator(".reading-value")).to_have_text(re.compile(r"^1(8[7-9]|9[0-4])$"))
        expect(page.locator('.gauge[data-pid="RPM"] .reading-unit')).to_have_text("rpm")
        expect(page.locator(".chart-card .u-legend")).to_contain_text("(mph)")
        screenshot(page, "live-imperial-desktop")

    # History: the chart's unit, and the values under the cursor.
    page.goto(f"/vehicles/{web.vehicle_id}/history?pids=SPEED,COOLANT_TEMP&from={start}&to={end}")
    speed_chart = '.chart-card[data-pid="SPEED"]'
    coolant_chart = '.chart-card[data-pid="COOLANT_TEMP"]'
    expect(page.locator(f"{speed_chart} .chart-unit")).to_have_text("(mph)")
    expect(page.locator(f"{coolant_chart} .chart-unit")).to_have_text("(°F)")
    expect(page.locator(f"{speed_chart} canvas")).to_have_count(1)
    hover_the_middle(page, speed_chart)
    average = page.locator(f"{speed_chart} .u-legend .u-series").nth(1).locator(".u-value")
    expect(average).to_have_text("62 mph")
    hover_the_middle(page, coolant_chart)
    average = page.locator(f"{coolant_chart} .u-legend .u-series").nth(1).locator(".u-value")
    expect(average).to_have_text("194 °F")
    screenshot(page, "history-imperial-desktop")

    # Trips: distance in miles, speeds in mph; the CSV download in the same units.
    page.goto(f"/vehicles/{web.vehicle_id}/trips")
    card = page.locator(f'.trip-card[data-trip="{trip["id"]}"]')
    expect(card).to_contain_text(f"{trip['distance_km'] / KM_PER_MILE:.1f} mi")
    expect(card).to_contain_text(f"{trip['max_speed_kmh'] / KM_PER_MILE:.0f} mph")
    expect(card).not_to_contain_text("km/h")
    with page.expect_download() as download:
        card.get_by_role("link", name="CSV", exact=True).click()
    rows = list(csv.reader(io.StringIO(Path(download.value.path()).read_text())))
    assert {"SPEED (mph)", "COOLANT_TEMP (°F)", "RPM (rpm)"} <= set(rows[0])
    column = rows[0].index("SPEED (mph)")
    assert float(rows[1][column]) == pytest.approx(DRIVE_KMH / KM_PER_MILE)
    screenshot(page, "trips-imperial-desktop")
    card.get_by_role("heading").get_by_role("link").click()
    expect(page.locator('.chart-card[data-pid="SPEED"] .chart-unit')).to_have_text("(mph)")
    expect(page.get_by_role("region", name=re.compile("^Trip (of|since) "))).to_contain_text(" mi")

    # Alerts: a threshold typed in °F is kept in °C and shown back in °F.
    page.goto(f"/vehicles/{web.vehicle_id}/alerts")
    rule_form = page.get_by_role("form", name="Add a rule")
    rule_form.get_by_label("Name").fill("Hot engine")
    rule_form.get_by_label("PID").select_option("COOLANT_TEMP")
    expect(rule_form.get_by_label("Threshold")).to_be_visible()
    expect(rule_form.locator("label", has_text="Threshold")).to_have_text("Threshold (°F)")
    rule_form.get_by_label("Threshold").fill("230")
    rule_form.get_by_role("button", name="Add rule").click()
    rules = page.get_by_role("region", name="Rules")
    expect(rules).to_contain_text("Coolant above 230 °F")
    with owner_api(web) as client:
        stored = client.get(f"/api/v1/vehicles/{web.vehicle_id}/alert-rules").json()
        hot = next(r for r in stored if r["name"] == "Hot engine")
        assert hot["threshold"] == pytest.approx(110.0)
        assert hot["unit"] == "°C"
        response = client.delete(f"/api/v1/vehicles/{web.vehicle_id}/alert-rules/{hot['id']}")
        assert response.status_code == 204

    # Back to metric: the same pages read km/h again.
    page.goto("/settings")
    form.get_by_role("radio", name=re.compile("^Metric")).check()
    form.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status").filter(has_text="Figures are now shown in")).to_be_visible()
    page.goto(f"/vehicles/{web.vehicle_id}/history?pids=SPEED&from={start}&to={end}")
    expect(page.locator(f"{speed_chart} .chart-unit")).to_have_text("(km/h)")
