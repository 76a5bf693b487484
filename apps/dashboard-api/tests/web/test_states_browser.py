"""Every page tells the same state of the car and its device, as the simulated car is paused and
resumed: the vehicle list, the vehicle header (live page), Devices and Trips, on a desktop and
a phone, with screenshots and axe-core on each.

The server runs with short thresholds (stale after 8 s, offline after 30 s, a device silent
after 10 s) so that the transitions take seconds; the state model's thresholds themselves are
tested to the millisecond in tests/presence.
"""

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from tests.web.browser import (
    DESKTOP,
    DEVICE_NAME,
    PHONE,
    VEHICLE_NAME,
    Feeder,
    Session,
    WebStack,
    axe_violations,
    owner_api,
    require_tools,
    screenshot,
    wait_for,
    web_stack,
)

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("web-browser")]

THRESHOLDS = {
    "VEHICLE_STALE_AFTER_S": "8",
    "VEHICLE_OFFLINE_AFTER_S": "30",
    "DEVICE_SILENT_AFTER_S": "10",
}
# Longer than any threshold above, plus the pages' own refresh (10 s at most).
WAIT_MS = 45_000


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebStack]:
    """A stack of this module's own: short thresholds, and a car nobody has heard from yet."""
    require_tools()
    with web_stack(tmp_path_factory.mktemp("web-states"), THRESHOLDS) as running:
        yield running


def _checked(page: Page, name: str) -> list[str]:
    """axe-core's serious findings, and the page being wider than the screen; a screenshot."""
    found = axe_violations(page)
    overflow = page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    if overflow > 0:
        found.append(f"{name} is {overflow}px wider than the screen")
    screenshot(page, f"states-{name}")
    return found


def _look(page: Page, web: WebStack, shot: str, vehicle: str, device: str, trip: bool) -> None:
    """Each page, in turn, shows the vehicle's state ``vehicle`` and the device's ``device``
    (with the time each began), and the trip "In progress" exactly when ``trip``."""
    base = f"/vehicles/{web.vehicle_id}"
    problems: list[str] = []

    page.goto("/vehicles")
    card = page.get_by_role("listitem").filter(has_text=VEHICLE_NAME)
    expect(card.locator(".state-badge")).to_have_text(vehicle, timeout=WAIT_MS)
    problems += _checked(page, f"{shot}-vehicles")

    page.goto(base)
    header = page.locator(".vehicle-state")
    expect(header.locator(".state-badge")).to_have_text(vehicle, timeout=WAIT_MS)
    expect(header.locator(".state-since")).to_have_text(
        "No data yet" if vehicle == "Never seen" else re.compile(r"^since ")
    )
    # No green "Live" anywhere on the page while the car is not live.
    if vehicle != "Live":
        expect(page.locator(".badge-ok", has_text="Live")).to_have_count(0)
    problems += _checked(page, f"{shot}-live")

    page.goto(f"{base}/devices")
    device_card = page.locator(".device-card").filter(has_text=DEVICE_NAME)
    expect(device_card.locator(".state-badge")).to_have_text(device, timeout=WAIT_MS)
    expect(device_card.locator(".state-since")).to_have_text(re.compile(r"^since "))
    expect(page.locator(".vehicle-state .state-badge")).to_have_text(vehicle)
    if device != "Connected":
        expect(device_card).not_to_contain_text("Sample rate")
        expect(device_card).not_to_contain_text("Online")
    problems += _checked(page, f"{shot}-devices")

    page.goto(f"{base}/trips")
    expect(page.locator(".vehicle-state .state-badge")).to_have_text(vehicle)
    in_progress = page.locator(".trip-card .in-progress")
    if trip:
        expect(in_progress).to_have_count(1, timeout=WAIT_MS)
    elif vehicle != "Never seen":
        expect(page.locator(".trip-card")).not_to_have_count(0)
        expect(in_progress).to_have_count(0, timeout=WAIT_MS)
    problems += _checked(page, f"{shot}-trips")
    assert problems == [], problems


@pytest.mark.parametrize(("size", "viewport"), [("desktop", DESKTOP), ("phone", PHONE)])
def test_every_page_tells_the_same_state_as_the_car_stops_and_starts(
    session: Session, web: WebStack, size: str, viewport: dict[str, int]
) -> None:
    # axe-core is injected as a script, which the page's CSP would rightly refuse.
    page = session.page(viewport=viewport, bypass_csp=True)
    if size == "desktop":  # the module's first test: nothing was ever sent
        _look(page, web, f"never-seen-{size}", "Never seen", "Silent", trip=False)

    with Feeder(web) as car, owner_api(web) as api:
        trips = f"/api/v1/vehicles/{web.vehicle_id}/trips"
        wait_for("the drive as a trip", lambda: bool(api.get(trips).json()))
        _look(page, web, f"live-{size}", "Live", "Connected", trip=True)

        car.pause()
        _look(page, web, f"stale-{size}", "Stale", "Silent", trip=False)
        _look(page, web, f"offline-{size}", "Offline", "Silent", trip=False)
        # The trip is not finished (the join gap has not passed), and not in progress either.
        [trip] = api.get(trips).json()
        assert (trip["finished"], trip["in_progress"]) == (False, False)

        car.resume()
        _look(page, web, f"resumed-{size}", "Live", "Connected", trip=True)
        [trip] = api.get(trips).json()
        assert trip["in_progress"] is True
        assert not car.errors
