"""The rough edges a new user hits on first look, each driven in a real browser.

Sign-in and sign-out addresses, a vehicle that does not exist, a shared vehicle's card and the
pages a viewer must not be offered, the phone layout (tab strip, Status, History), History's
browser history and its notes, and the agent command's address (PUBLIC_URL).
"""

import re
import time
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import PASSWORD
from tests.web.browser import (
    DESKTOP,
    EMAIL,
    PHONE,
    VEHICLE_NAME,
    Feeder,
    Session,
    WebStack,
    owner_api,
    require_tools,
    screenshot,
    web_stack,
)

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("web-browser")]

PUBLIC_URL = "https://cars.example.org"
VIEWER = "viewer@example.com"
SIZES = [pytest.param(DESKTOP, id="desktop"), pytest.param(PHONE, id="phone")]


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebStack]:
    """This module's server has its public address set (the shared one has not)."""
    require_tools()
    with web_stack(tmp_path_factory.mktemp("web"), {"PUBLIC_URL": PUBLIC_URL}) as running:
        yield running


@pytest.fixture(scope="module")
def recent(web: WebStack) -> tuple[int, int]:
    """RPM and SPEED every 2 s for the 20 minutes up to 5 minutes ago: (from, to)."""
    now = int(time.time() * 1000)
    start, end = now - 25 * 60_000, now - 5 * 60_000
    samples: list[tuple[int, str, float]] = []
    for i, ts in enumerate(range(start, end, 2000)):
        samples += [(ts, "RPM", 900.0 + (i % 40) * 50), (ts, "SPEED", float(i % 100))]
    web.ingest(samples)
    return start, end


@pytest.fixture(scope="module")
def viewer(web: WebStack) -> str:
    """A second account the vehicle is shared with, read-only."""
    web.add_user(VIEWER)
    with owner_api(web) as owner:
        sent = owner.post(f"/api/v1/vehicles/{web.vehicle_id}/shares", json={"email": VIEWER})
        assert sent.status_code in (200, 201, 202), sent.text
    with owner_api(web, VIEWER) as them:
        invitations = them.get("/api/v1/invitations").json()
        accepted = them.post(f"/api/v1/invitations/{invitations[0]['id']}/accept")
        assert accepted.status_code == 200, accepted.text
    return VIEWER


def sign_in(page: Page) -> None:
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


@pytest.mark.parametrize("viewport", SIZES)
def test_the_address_bar_follows_sign_in_and_sign_out(
    session: Session, web: WebStack, viewport: dict[str, int]
) -> None:
    page = session.page(signed_in=False, viewport=viewport)
    live = f"/vehicles/{web.vehicle_id}"
    page.goto(live)
    expect(page).to_have_url(re.compile(rf"/login\?next=%2Fvehicles%2F{web.vehicle_id}$"))
    sign_in(page)
    expect(page).to_have_url(re.compile(rf"{live}$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text(VEHICLE_NAME)

    # Signing out from a page with a live stream open lands on the sign-in page's address.
    with Feeder(web):
        expect(page.locator(".vehicle-state .state-badge")).to_have_text("Live", timeout=15_000)
        page.wait_for_function(
            "() => performance.getEntriesByName('obd2:live-first-sample').length > 0"
        )
        page.get_by_role("button", name="Sign out").click()
        expect(page).to_have_url(re.compile(r"/login$"))
        expect(page.get_by_role("button", name="Sign in")).to_be_visible()
        page.wait_for_timeout(1500)  # a stream's late 401 must not move it again
        expect(page).to_have_url(re.compile(r"/login$"))

    # Signing in from /login itself goes to the vehicles.
    sign_in(page)
    expect(page).to_have_url(re.compile(r"/vehicles$"))


@pytest.mark.parametrize("viewport", SIZES)
def test_a_vehicle_that_does_not_exist_says_so_and_nothing_else(
    session: Session, viewport: dict[str, int]
) -> None:
    page = session.page(viewport=viewport)
    for path in ("/vehicles/99999", "/vehicles/99999/history", "/vehicles/abc/trips"):
        page.goto(path)
        expect(page.get_by_role("heading", level=1)).to_have_text("Vehicle not found")
        expect(page.get_by_role("navigation", name="Vehicle pages")).to_have_count(0)
        expect(page.get_by_role("link", name="All vehicles")).to_be_visible()
    page.wait_for_timeout(1500)  # long enough for a stream to have tried and failed
    expect(page.locator("main")).not_to_contain_text("Reconnecting")
    expect(page.locator("main")).not_to_contain_text("Waiting for data")
    screenshot(page, f"vehicle-not-found-{'phone' if viewport == PHONE else 'desktop'}")


@pytest.mark.parametrize("viewport", SIZES)
def test_a_shared_vehicle_reads_well_and_offers_the_viewer_nothing_to_manage(
    session: Session, web: WebStack, viewer: str, viewport: dict[str, int]
) -> None:
    page = session.page(viewport=viewport, email=viewer)
    page.goto("/vehicles")
    card = page.get_by_role("listitem").filter(has_text=VEHICLE_NAME)
    expect(card).to_contain_text("Shared with you")
    name = card.get_by_role("link", name=VEHICLE_NAME)
    # The name is on one line: as tall as one line of its heading, and not squeezed.
    box = name.bounding_box()
    line = name.evaluate("el => parseFloat(getComputedStyle(el.parentElement).lineHeight)")
    assert box is not None
    assert box["height"] <= line * 1.2, f"the name wraps: {box} (line {line}px)"
    assert box["width"] >= 100
    size = "phone" if viewport == PHONE else "desktop"
    screenshot(page, f"shared-card-{size}")

    # Typing the Devices address does not offer a viewer a form that would be refused.
    page.goto(f"/vehicles/{web.vehicle_id}/devices")
    expect(page.get_by_role("heading", name="Only the owner manages devices")).to_be_visible()
    expect(page.get_by_role("form", name="Create a device")).to_have_count(0)
    expect(page.get_by_role("button", name="Create device")).to_have_count(0)
    screenshot(page, f"shared-devices-{size}")


def test_on_a_phone_the_active_tab_status_and_first_chart_are_in_view(
    session: Session, web: WebStack, recent: tuple[int, int]
) -> None:
    page = session.page(viewport=PHONE)
    for tab in ("sharing", "import", "dtcs"):
        page.goto(f"/vehicles/{web.vehicle_id}/{tab}")
        strip = page.get_by_role("navigation", name="Vehicle pages")
        current = strip.locator('[aria-current="page"]')
        expect(current).to_be_visible()
        page.wait_for_timeout(200)  # the strip scrolls on the next frame
        outer, inner = strip.bounding_box(), current.bounding_box()
        assert outer is not None
        assert inner is not None
        assert inner["x"] >= outer["x"] - 1, f"{tab}: the tab starts left of the strip"
        assert inner["x"] + inner["width"] <= outer["x"] + outer["width"] + 1, (
            f"{tab}: the tab ends right of the strip ({inner} in {outer})"
        )
    screenshot(page, "tabs-scrolled-phone")

    page.goto("/status")
    expect(page.get_by_text("Everything is working")).to_be_visible()
    spill = page.evaluate(
        """() => [...document.querySelectorAll('.card')].flatMap((card) => {
            const right = card.getBoundingClientRect().right;
            return [...card.querySelectorAll('td, th, dd, dt')]
              .filter((cell) => cell.getBoundingClientRect().right > right + 1)
              .map((cell) => cell.textContent);
        })"""
    )
    assert spill == []
    screenshot(page, "status-phone")

    page.goto(f"/vehicles/{web.vehicle_id}/history?pids=RPM,SPEED&range=1h")
    chart = page.locator(".chart-card canvas").first
    expect(chart).to_be_visible()
    top = chart.bounding_box()
    assert top is not None
    assert top["y"] < PHONE["height"], f"the first chart starts at {top['y']}px: below the screen"
    # The settings are one tap away.
    page.get_by_text("Range and PIDs").click()
    expect(page.get_by_role("button", name="6h", exact=True)).to_be_visible()
    screenshot(page, "history-phone")


@pytest.mark.parametrize("viewport", SIZES)
def test_history_back_undoes_one_zoom_and_notes_sparse_data(
    session: Session, web: WebStack, recent: tuple[int, int], viewport: dict[str, int]
) -> None:
    page = session.page(locale="en-US", viewport=viewport)
    page.goto(f"/vehicles/{web.vehicle_id}/history?pids=RPM,SPEED&range=1h")
    if viewport == PHONE:  # the settings are folded there
        page.get_by_text("Range and PIDs").click()
    rpm = page.locator('.chart-card[data-pid="RPM"]')
    expect(rpm.locator("canvas")).to_have_count(1)
    entries = page.evaluate("() => history.length")

    # Presets and PIDs change the page in place.
    page.get_by_role("button", name="6h", exact=True).click()
    page.get_by_role("button", name="1h", exact=True).click()
    page.get_by_role("checkbox", name="Speed", exact=True).uncheck()
    page.get_by_role("checkbox", name="Speed", exact=True).check()
    expect(page.locator('.chart-card[data-pid="SPEED"] canvas')).to_have_count(1)
    assert page.evaluate("() => history.length") == entries

    # One drag over the (synced) charts is one entry; Back undoes it.
    rpm.locator(".u-over").scroll_into_view_if_needed()
    box = rpm.locator(".u-over").bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] * 0.7, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.75, box["y"] + box["height"] / 2, steps=5)
    page.mouse.up()
    expect(page).to_have_url(re.compile(r"from=\d+&to=\d+"))
    assert page.evaluate("() => history.length") == entries + 1
    expect(rpm.locator(".chart-meta")).to_contain_text("samples")
    expect(rpm.locator(".chart-meta")).not_to_contain_text(re.compile(r"\b0 s\b"))
    page.go_back()
    expect(page).to_have_url(re.compile(r"range=1h"))
    if viewport == PHONE and not page.get_by_role("button", name="1h", exact=True).is_visible():
        page.get_by_text("Range and PIDs").click()
    expect(page.get_by_role("button", name="1h", exact=True)).to_have_attribute(
        "aria-pressed", "true"
    )

    # A 12-hour clock's AM/PM fits in the From and To fields.
    for label in ("From", "To"):
        field = page.get_by_label(label, exact=True)
        fits = field.evaluate(
            """(input) => {
                const probe = document.createElement('input');
                probe.type = 'datetime-local';
                probe.value = '2026-12-28T10:58';
                probe.style.cssText = 'position:absolute;width:auto;min-width:0;visibility:hidden';
                probe.style.font = getComputedStyle(input).font;
                probe.style.padding = getComputedStyle(input).padding;
                probe.style.border = getComputedStyle(input).border;
                document.body.append(probe);
                const needed = probe.offsetWidth;
                probe.remove();
                return [input.offsetWidth, needed];
            }"""
        )
        assert fits[0] >= fits[1], f"{label} is {fits[0]}px, its date and time need {fits[1]}px"

    # 30 days with twenty minutes of data: said, and one click zooms to it.
    page.get_by_role("button", name="30d", exact=True).click()
    note = page.locator(".extent-note")
    expect(note).to_contain_text("This range has data only from")
    screenshot(page, f"history-sparse-{'phone' if viewport == PHONE else 'desktop'}")
    note.get_by_role("button", name="Zoom to the data").click()
    expect(page).to_have_url(re.compile(r"from=\d+&to=\d+"))
    expect(note).to_be_empty()
    expect(rpm.locator("canvas")).to_have_count(1)


@pytest.mark.parametrize("viewport", SIZES)
def test_the_agent_command_uses_the_public_address(
    session: Session, web: WebStack, viewport: dict[str, int]
) -> None:
    page = session.page(viewport=viewport)
    page.goto(f"/vehicles/{web.vehicle_id}/devices")
    name = f"Boot Pi {viewport['width']}"
    page.get_by_label("Device name").fill(name)
    page.get_by_role("button", name="Create device").click()
    command = page.get_by_label("Command to start the agent")
    expect(command).to_contain_text(f"--api {PUBLIC_URL} ")
    expect(page.get_by_text("PUBLIC_URL is not set")).to_have_count(0)
    screenshot(page, f"device-command-public-url-{'phone' if viewport == PHONE else 'desktop'}")
