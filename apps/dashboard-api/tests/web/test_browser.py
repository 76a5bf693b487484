"""The web UI in a real browser against a real server: what a person does, page by page."""

import csv
import io
import re
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from playwright.sync_api import FilePayload, Page, Request, expect

from tests.conftest import PASSWORD
from tests.imports.test_imports import GPX_TRACK
from tests.web.browser import (
    DESKTOP,
    EMAIL,
    PHONE,
    VEHICLE_NAME,
    Agent,
    Feeder,
    Session,
    WebStack,
    axe_violations,
    owner_api,
    screenshot,
    wait_for,
)

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("web-browser")]

HISTORY_START_AGO_MS = 50 * 60_000
HISTORY_END_AGO_MS = 10 * 60_000
HISTORY_STEP_MS = 2000


@pytest.fixture(scope="module")
def history(web: WebStack) -> tuple[int, int, int]:
    """RPM and SPEED every 2 s from 50 to 10 minutes ago; (from, to, samples per PID)."""
    now = int(time.time() * 1000)
    start = now - HISTORY_START_AGO_MS
    end = now - HISTORY_END_AGO_MS
    samples: list[tuple[int, str, float]] = []
    for i, ts in enumerate(range(start, end, HISTORY_STEP_MS)):
        samples.append((ts, "RPM", 900.0 + (i % 50) * 40))
        samples.append((ts, "SPEED", float(i % 120)))
    web.ingest(samples)
    return start, end, len(samples) // 2


def sign_in_through_the_form(page: Page, password: str) -> None:
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def test_sign_in_wrong_then_right_password(session: Session) -> None:
    page = session.page(signed_in=False)
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login$"))
    sign_in_through_the_form(page, "not the password")
    expect(page.get_by_role("alert")).to_have_text("Wrong email or password.")
    expect(page).to_have_url(re.compile(r"/login$"))
    expect(page.get_by_label("Password")).to_be_focused()

    sign_in_through_the_form(page, PASSWORD)
    expect(page).to_have_url(re.compile(r"/vehicles$"))
    expect(page.get_by_role("heading", name=VEHICLE_NAME)).to_be_visible()
    expect(page.get_by_role("navigation", name="Main")).to_contain_text("Status")

    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/login$"))
    page.goto("/vehicles")
    expect(page).to_have_url(re.compile(r"/login\?next=%2Fvehicles$"))


def test_sign_in_with_the_keyboard_alone(session: Session) -> None:
    page = session.page(signed_in=False)
    page.goto("/login")
    expect(page.get_by_label("Email")).to_be_focused()
    page.keyboard.type(EMAIL)
    page.keyboard.press("Tab")
    expect(page.get_by_label("Password")).to_be_focused()
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Vehicles", exact=True)).to_be_visible()
    # After a move within the app, focus is at the start of the new content.
    expect(page.locator("main")).to_be_focused()
    # On a fresh load the skip link is the first stop, and takes focus to the content.
    page.reload()
    expect(page.get_by_role("heading", name="Vehicles", exact=True)).to_be_visible()
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("main")).to_be_focused()


def test_vehicle_list_shows_the_vehicle_live(session: Session, web: WebStack) -> None:
    page = session.page()
    with Feeder(web):
        page.goto("/vehicles")
        card = page.get_by_role("listitem").filter(has_text=VEHICLE_NAME)
        expect(card).to_contain_text("WVWZZZ1KZAW000001")
        expect(card.locator(".state-badge")).to_have_text("Live", timeout=15_000)


def test_live_gauges_change_within_3_seconds(session: Session, web: WebStack) -> None:
    page = session.page()
    with Feeder(web) as feeder:
        page.goto(f"/vehicles/{web.vehicle_id}")
        expect(page.get_by_role("status").filter(has_text="Live")).to_be_visible()
        rpm = page.locator('.gauge[data-pid="RPM"] .reading-value')
        expect(rpm).to_have_text(re.compile(r"\d"))
        first = rpm.inner_text()
        page.wait_for_function(
            "(first) => document.querySelector('.gauge[data-pid=\"RPM\"] .reading-value')"
            ".textContent !== first",
            arg=first,
            timeout=3000,
        )
        for pid in Feeder.PIDS[:8]:
            expect(page.locator(f'.gauge[data-pid="{pid}"]')).to_be_visible()
        # A PID without a gauge gets a tile; PIDs the car did not send get nothing.
        expect(page.locator('.tile[data-pid="MAF"]')).to_be_visible()
        expect(page.locator('.gauge[data-pid="CONTROL_MODULE_VOLTAGE"]')).to_be_hidden()
        expect(page.locator('.gauge[data-pid="RPM"] .reading-age')).to_contain_text("old")
        # The rolling chart plots RPM and speed by default; a reading can be switched on.
        expect(page.locator(".chart-card canvas")).to_have_count(1)
        toggle = page.get_by_role("button", name="Show Coolant in the chart")
        toggle.click()
        expect(toggle).to_have_attribute("aria-pressed", "true")
        assert not feeder.errors


def test_live_values_grey_out_when_stale(session: Session, web: WebStack) -> None:
    page = session.page()
    with Feeder(web):
        page.goto(f"/vehicles/{web.vehicle_id}")
        expect(page.locator('.gauge[data-pid="RPM"]')).to_be_visible()
    expect(page.locator('.gauge[data-pid="RPM"]')).to_have_class(
        re.compile(r"\bstale\b"), timeout=15_000
    )
    expect(page.locator('.gauge[data-pid="RPM"] .reading-age')).to_contain_text("stale")


def test_live_stream_resumes_after_the_server_crashes(session: Session, web: WebStack) -> None:
    # The crash breaks the stream and refuses reconnections until the new process is up.
    session.watch.allow(r"^Failed to load resource: net::ERR_")
    page = session.page()
    stream_requests: list[Request] = []
    page.on(
        "request", lambda r: stream_requests.append(r) if "/streams/vehicles/" in r.url else None
    )
    pill = page.locator(".connection")
    state = page.locator(".vehicle-state .state-badge")
    rpm = page.locator('.gauge[data-pid="RPM"] .reading-value')
    with Feeder(web):
        page.goto(f"/vehicles/{web.vehicle_id}")
        # Connected: the pill steps aside for the vehicle's state.
        expect(state).to_have_text("Live")
        expect(pill).to_be_hidden()
        expect(rpm).to_have_text(re.compile(r"\d"))
        assert "last-event-id" not in stream_requests[0].headers
        # A sample came over the stream itself (not only from the history the page starts with).
        page.wait_for_function(
            "() => performance.getEntriesByName('obd2:live-first-sample').length > 0"
        )

        # Every text the pill shows from here on: the new process may be up, and the stream
        # back, before the restart returns, so "Reconnecting…" may already be gone by then.
        page.evaluate(
            """() => {
                window.pillTexts = [];
                const record = () => window.pillTexts.push(
                    document.querySelector('.connection')?.textContent.trim());
                new MutationObserver(record).observe(
                    document.body, {childList: true, subtree: true, characterData: true});
            }"""
        )
        web.crash_and_restart_api()
        page.wait_for_function("() => window.pillTexts.includes('Reconnecting…')", timeout=30_000)
        expect(pill).to_be_hidden(timeout=30_000)
        expect(state).to_have_text("Live")
        assert len(stream_requests) >= 2
        for reconnection in stream_requests[1:]:
            resumed = reconnection.headers.get("last-event-id", "")
            assert re.fullmatch(r"\d+-\d+\.\d+", resumed), resumed
        before = rpm.inner_text()
        page.wait_for_function(
            "(v) => document.querySelector('.gauge[data-pid=\"RPM\"] .reading-value')"
            ".textContent !== v",
            arg=before,
            timeout=10_000,
        )


def test_history_chart_shows_points_for_a_range(
    session: Session, web: WebStack, history: tuple[int, int, int]
) -> None:
    start, end, per_pid = history
    page = session.page()
    page.goto(f"/vehicles/{web.vehicle_id}/history?pids=RPM,SPEED&range=1h")
    expect(page.get_by_role("button", name="1h", exact=True)).to_have_attribute(
        "aria-pressed", "true"
    )
    rpm = page.locator('.chart-card[data-pid="RPM"]')
    expect(rpm.locator("canvas")).to_have_count(1)
    meta = rpm.locator(".chart-meta")
    expect(meta).to_contain_text("samples")
    samples = int(re.sub(r"[^\d]", "", meta.inner_text().split("samples")[0]))
    points = int(meta.inner_text().split("·")[1].split("points")[0].strip())
    assert samples >= per_pid
    assert points > 10

    # Hovering reads out the values under the cursor.
    box = rpm.locator(".u-over").bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] * 0.4, box["y"] + box["height"] / 2)
    expect(rpm.locator(".u-legend .u-series").nth(1).locator(".u-value")).to_contain_text("rpm")

    # Dragging zooms into the selection and the URL keeps it.
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.6, box["y"] + box["height"] / 2, steps=5)
    page.mouse.up()
    expect(page).to_have_url(re.compile(r"from=\d+&to=\d+"))
    query = parse_qs(urlsplit(page.url).query)
    span = int(query["to"][0]) - int(query["from"][0])
    assert 0 < span < 30 * 60_000
    expect(page.get_by_role("button", name="1h", exact=True)).to_have_attribute(
        "aria-pressed", "false"
    )

    # The URL is the state: opened afresh it shows the same range and PIDs.
    shared = page.url
    other = session.page()
    other.goto(shared)
    expect(other.locator('.chart-card[data-pid="RPM"] canvas')).to_have_count(1)
    expect(other.locator('.chart-card[data-pid="SPEED"] canvas')).to_have_count(1)
    expect(other.get_by_role("checkbox", name="Engine speed")).to_be_checked()

    # A range with nothing in it says so.
    page.goto(f"/vehicles/{web.vehicle_id}/history?pids=COOLANT_TEMP&from={start}&to={end}")
    expect(page.locator('.chart-card[data-pid="COOLANT_TEMP"]')).to_contain_text(
        "No samples of Coolant in this range."
    )


def test_custom_range_is_checked(
    session: Session, web: WebStack, history: tuple[int, int, int]
) -> None:
    page = session.page()
    page.goto(f"/vehicles/{web.vehicle_id}/history?pids=RPM&range=6h")
    page.get_by_label("From", exact=True).fill("2026-01-02T10:00")
    page.get_by_label("To", exact=True).fill("2026-01-01T10:00")
    page.get_by_role("button", name="Show range").click()
    expect(page.get_by_role("alert")).to_contain_text("start must be")
    page.get_by_label("To", exact=True).fill("2026-01-02T11:00")
    page.get_by_role("button", name="Show range").click()
    expect(page).to_have_url(re.compile(r"from=1767348000000&to=1767351600000"))


def test_csv_download_of_the_shown_range(
    session: Session, web: WebStack, history: tuple[int, int, int]
) -> None:
    start, end, per_pid = history
    page = session.page(accept_downloads=True)
    page.goto(f"/vehicles/{web.vehicle_id}/history?pids=RPM,SPEED&from={start}&to={end}")
    expect(page.locator('.chart-card[data-pid="SPEED"] canvas')).to_have_count(1)
    with page.expect_download() as info:
        page.get_by_role("link", name="Download CSV").click()
    download = info.value
    # The vehicle, the day the range starts and what it is, as the person tells files apart.
    day = time.strftime("%Y-%m-%d", time.gmtime(start / 1000))
    assert download.suggested_filename == f"family-estate-{day}-history.csv"
    rows = list(csv.reader(io.StringIO(download.path().read_text())))
    # A row per sample time, a column per PID with its unit (this user reads metric).
    assert rows[0] == ["ts", "time", "RPM (rpm)", "SPEED (km/h)"]
    body = rows[1:]
    assert len(body) == per_pid
    assert all(cell for row in body for cell in row)
    assert all(start <= int(r[0]) < end for r in body)
    assert body[0][0] == str(start)
    assert float(body[0][2]) == 900.0


def test_device_token_is_shown_once_with_the_agent_command(session: Session, web: WebStack) -> None:
    page = session.page()
    page.goto(f"/vehicles/{web.vehicle_id}/devices")
    expect(page.get_by_role("heading", name="Glovebox Pi")).to_be_visible()
    page.get_by_label("Device name").fill("Dashcam Pi")
    page.get_by_role("button", name="Create device").click()

    token_field = page.get_by_label("Device token")
    expect(token_field).to_have_value(re.compile(r"^\S{20,}$"))
    token = token_field.input_value()
    command = page.get_by_label("Command to start the agent")
    expect(command).to_have_text(
        f"obd2-bridge run --adapter /dev/ttyUSB0 --api {web.url} --token {token}"
    )
    # This server has no PUBLIC_URL: the address is the browser's, and the page says so.
    expect(page.get_by_role("note")).to_contain_text("PUBLIC_URL is not set")
    page.get_by_label("Adapter port in the car").fill("/dev/rfcomm0")
    expect(command).to_have_text(
        f"obd2-bridge run --adapter /dev/rfcomm0 --api {web.url} --token {token}"
    )
    expect(page.get_by_role("heading", name="Dashcam Pi", exact=True)).to_be_visible()

    # The token is real: the new device can upload with it.
    response = httpx.post(
        f"{web.url}/api/v1/ingest",
        json={"samples": [{"seq": 1, "ts": int(time.time() * 1000), "pid": "RPM", "value": 1.0}]},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200

    # Once dismissed it is gone for good, also after a reload.
    page.get_by_role("button", name="I have saved the token").click()
    expect(page.get_by_label("Device token")).to_have_count(0)
    page.reload()
    expect(page.get_by_role("heading", name="Dashcam Pi", exact=True)).to_be_visible()
    assert token not in page.content()

    # Revoking asks first and says what it does.
    card = page.locator("article").filter(
        has=page.get_by_role("heading", name="Dashcam Pi", exact=True)
    )
    card.get_by_role("button", name="Revoke").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("can no longer upload")
    dialog.get_by_role("button", name="Revoke token").click()
    expect(card).to_contain_text("Revoked")
    refused = httpx.post(
        f"{web.url}/api/v1/ingest",
        json={"samples": [{"seq": 2, "ts": int(time.time() * 1000), "pid": "RPM", "value": 1.0}]},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert refused.status_code == 401


def test_vehicles_add_rename_delete(session: Session) -> None:
    page = session.page()
    page.goto("/vehicles")
    page.get_by_label("Name", exact=True).fill("Van")
    page.get_by_label("VIN (optional)").fill("NOT-A-VIN")
    page.get_by_role("button", name="Add vehicle").click()
    expect(page.get_by_role("alert")).to_contain_text("17 characters")

    page.get_by_label("VIN (optional)").fill("1ftfw1et5dfc10312")
    page.get_by_role("button", name="Add vehicle").click()
    card = page.get_by_role("listitem").filter(has=page.get_by_role("heading", name="Van"))
    expect(card).to_contain_text("1FTFW1ET5DFC10312")
    expect(card.locator(".state-badge")).to_have_text("Never seen")

    card.get_by_role("button", name="Rename Van").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("New name").fill("Work van")
    dialog.get_by_role("button", name="Rename").click()
    renamed = page.get_by_role("listitem").filter(has=page.get_by_role("heading", name="Work van"))
    expect(renamed).to_be_visible()

    renamed.get_by_role("button", name="Delete Work van").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("cannot be undone")
    dialog.get_by_role("button", name="Cancel").click()
    expect(renamed).to_be_visible()
    renamed.get_by_role("button", name="Delete Work van").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete vehicle").click()
    expect(renamed).to_have_count(0)
    expect(page.get_by_role("heading", name=VEHICLE_NAME)).to_be_visible()


def test_status_page_shows_every_dependency_ok(session: Session) -> None:
    page = session.page()
    page.goto("/status")
    rows = page.locator("tr[data-check]")
    expect(rows).to_have_count(4)
    for check in ("db", "redis", "migrations", "redis_schema"):
        expect(page.locator(f'tr[data-check="{check}"] .badge')).to_have_text("ok")
    expect(page.get_by_role("status").filter(has_text="Everything is working")).to_be_visible()
    expect(page.locator(".figure").filter(has_text="Ingest rate")).to_contain_text(
        "/s", timeout=15_000
    )
    expect(page.locator(".figure").filter(has_text="Stream lag").locator("dd").first).to_have_text(
        re.compile(r"^\d")
    )
    expect(
        page.locator(".figure").filter(has_text="Dead letters").locator("dd").first
    ).to_have_text("0")
    dead_letters = page.get_by_role("region", name="Dead letters")
    expect(dead_letters).to_contain_text("None: every stored batch")


def test_session_expiry_returns_to_sign_in_then_back(session: Session, web: WebStack) -> None:
    page = session.page()
    page.goto(f"/vehicles/{web.vehicle_id}/history?pids=SPEED&range=6h")
    expect(page.locator('.chart-card[data-pid="SPEED"]')).to_be_visible()
    web.end_all_sessions()

    page.get_by_role("link", name="Devices").click()
    expect(page).to_have_url(re.compile(r"/login\?expired=1&next="))
    expect(page.get_by_role("status").filter(has_text="session has expired")).to_be_visible()
    sign_in_through_the_form(page, PASSWORD)
    expect(page).to_have_url(re.compile(rf"/vehicles/{web.vehicle_id}/devices$"))
    expect(page.get_by_role("heading", name="Glovebox Pi")).to_be_visible()


def test_theme_choice_is_kept(session: Session) -> None:
    page = session.page()
    page.goto("/vehicles")
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    page.get_by_role("button", name="Switch to light theme").click()
    expect(page.locator("html")).to_have_attribute("data-theme", "light")
    page.reload()
    expect(page.locator("html")).to_have_attribute("data-theme", "light")
    expect(page.get_by_role("button", name="Switch to dark theme")).to_be_visible()


PAGES = [
    ("login", "/login", "#login-email"),
    ("vehicles", "/vehicles", ".vehicle-card"),
    ("live", "/vehicles/{id}", '.gauge[data-pid="RPM"]'),
    (
        "history",
        "/vehicles/{id}/history?pids=RPM,SPEED,COOLANT_TEMP&range=1h",
        ".chart-card canvas",
    ),
    ("devices", "/vehicles/{id}/devices", ".device-card"),
    ("trips", "/vehicles/{id}/trips", ".trip-card"),
    ("alerts", "/vehicles/{id}/alerts", "#add-rule-title"),
    ("sharing", "/vehicles/{id}/sharing", "#share-title"),
    ("import", "/vehicles/{id}/import", "#import-title"),
    ("status", "/status", "tr[data-check]"),
    ("settings", "/settings", 'input[name="units"]'),
]


@pytest.mark.parametrize(("size", "viewport"), [("desktop", DESKTOP), ("phone", PHONE)])
def test_every_page_is_accessible_fits_and_is_pictured(
    session: Session,
    web: WebStack,
    history: tuple[int, int, int],
    size: str,
    viewport: dict[str, int],
) -> None:
    # axe-core is injected as a script, which the page's CSP would rightly refuse.
    signed_out = session.page(viewport=viewport, signed_in=False, bypass_csp=True)
    page = session.page(viewport=viewport, bypass_csp=True)
    problems: dict[str, list[str]] = {}
    with Feeder(web):
        for name, path, ready in PAGES:
            target = signed_out if name == "login" else page
            target.goto(path.format(id=web.vehicle_id))
            expect(target.locator(ready).first).to_be_visible()
            target.wait_for_timeout(1200 if name in {"live", "status"} else 300)
            shot = screenshot(target, f"{name}-{size}")
            assert shot.stat().st_size > 5000
            found = axe_violations(target)
            overflow = target.evaluate(
                "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            if overflow > 0:
                found.append(f"page is {overflow}px wider than the {size} screen")
            if found:
                problems[name] = found
    # The light theme gets the same checks on the busiest page.
    page.evaluate("() => localStorage.setItem('obd2-theme', 'light')")
    page.goto(f"/vehicles/{web.vehicle_id}/history?pids=RPM,SPEED&range=1h")
    expect(page.locator(".chart-card canvas").first).to_be_visible()
    screenshot(page, f"history-light-{size}")
    if light := axe_violations(page):
        problems["history (light)"] = light
    assert problems == {}


def dtc_report(
    ts: int, stored: list[str], pending: list[str], freeze: dict[str, float] | None = None
) -> dict[str, object]:
    report: dict[str, object] = {
        "type": "dtcs",
        "ts": ts,
        "stored": [{"code": c} for c in stored],
        "pending": [{"code": c} for c in pending],
        "permanent": [],
    }
    if freeze:
        report |= {"freeze_dtc": stored[0], "freeze_frame": freeze}
    return report


def test_trouble_codes_page_with_codes_and_clearing(session: Session, web: WebStack) -> None:
    page = session.page(bypass_csp=True)
    now = int(time.time() * 1000)
    # P0171 is reported once, then no longer: it moves to the history as gone.
    with Agent(web, dtc_report(now - 60_000, ["P0171"], [])):
        pass
    freeze = {"RPM": 2450.0, "COOLANT_TEMP": 96.0}
    with Agent(web, dtc_report(now, ["P0301"], ["P0420"], freeze)) as agent:
        page.goto(f"/vehicles/{web.vehicle_id}")
        page.get_by_role("link", name="Trouble codes").click()
        active = page.get_by_role("region", name=re.compile("^Active"))
        expect(active.get_by_role("heading", name="P0301")).to_be_visible()
        expect(active).to_contain_text("Cylinder 1 misfire detected")
        # The freeze frame the car kept with the stored code, folded until asked for.
        frame = active.locator(".freeze-frame")
        expect(frame.locator('[data-pid="COOLANT_TEMP"]')).to_be_hidden()
        frame.get_by_text("Freeze frame (2 values)").click()
        expect(frame.locator('[data-pid="COOLANT_TEMP"]')).to_contain_text("96 °C")
        expect(frame.locator('[data-pid="RPM"]')).to_contain_text("rpm")
        expect(
            page.get_by_role("region", name=re.compile("^Pending")).locator(".freeze-frame")
        ).to_have_count(0)
        expect(page.get_by_role("region", name=re.compile("^Pending"))).to_contain_text("P0420")
        expect(page.get_by_role("region", name=re.compile("^Permanent"))).to_contain_text(
            "No permanent codes."
        )
        expect(page.get_by_role("region", name="Cleared earlier")).to_contain_text("P0171")
        screenshot(page, "dtcs-desktop")
        assert axe_violations(page) == []

        page.get_by_role("button", name="Clear codes…").click()
        dialog = page.get_by_role("dialog")
        expect(dialog).to_contain_text("check-engine light")
        expect(dialog).to_contain_text("readiness monitors")
        dialog.get_by_role("button", name="Cancel").click()
        page.wait_for_timeout(300)
        assert agent.commands == []
        page.get_by_role("button", name="Clear codes…").click()
        page.get_by_role("dialog").get_by_role("button", name="Clear codes").click()
        expect(page.get_by_role("status").filter(has_text="Sent to the car")).to_be_visible()
        expect(page.get_by_text("The car cleared its codes")).to_be_visible()
        assert [c["type"] for c in agent.commands] == ["clear_dtcs"]
        cleared = page.get_by_role("region", name="Cleared earlier")
        expect(cleared).to_contain_text("P0301")
        expect(page.get_by_role("region", name=re.compile("^Active"))).to_contain_text(
            "No active codes."
        )


def test_trips_list_and_detail(
    session: Session, web: WebStack, history: tuple[int, int, int]
) -> None:
    start, end, _ = history
    with owner_api(web) as client:
        path = f"/api/v1/vehicles/{web.vehicle_id}/trips"
        wait_for("the seeded drive as a trip", lambda: bool(client.get(path).json()))
        trips = client.get(path).json()
    drive = next(t for t in trips if t["start_ts"] <= start + 60_000)
    page = session.page(accept_downloads=True)
    page.goto(f"/vehicles/{web.vehicle_id}")
    page.get_by_role("navigation", name="Vehicle pages").get_by_role("link", name="Trips").click()
    card = page.locator(f'.trip-card[data-trip="{drive["id"]}"]')
    expect(card).to_contain_text(f"{drive['distance_km']:.1f} km")
    expect(card).to_contain_text(f"{drive['max_speed_kmh']:.0f} km/h")
    expect(card.get_by_role("link", name="GPX track")).to_have_count(0)
    with page.expect_download() as download_info:
        card.get_by_role("link", name="CSV", exact=True).click()
    rows = list(csv.reader(io.StringIO(Path(download_info.value.path()).read_text())))
    assert rows[0][:2] == ["ts", "time"]
    assert {"RPM (rpm)", "SPEED (km/h)"} <= set(rows[0][2:])
    assert all(start <= int(row[0]) <= end for row in rows[1:])
    screenshot(page, "trips-desktop")

    # The date filter: the drive's day shows it, a day before it shows none, "All dates" resets.
    day = page.evaluate(
        "ts => { const d = new Date(ts); const p = n => String(n).padStart(2, '0');"
        " return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}`; }",
        drive["start_ts"],
    )
    before = page.evaluate(
        "ts => { const d = new Date(ts); d.setDate(d.getDate() - 1); const p = n =>"
        " String(n).padStart(2, '0'); return `${d.getFullYear()}-${p(d.getMonth() + 1)}-"
        "${p(d.getDate())}`; }",
        drive["start_ts"],
    )
    dates = page.get_by_role("form", name="Trips by date")
    dates.get_by_label("From").fill(before)
    dates.get_by_label("To").fill(before)
    with page.expect_request(re.compile(r"/trips\?.*from=\d+&to=\d+")):
        dates.get_by_role("button", name="Show trips").click()
    expect(page.get_by_text("No trips started on these days.")).to_be_visible()
    expect(card).to_have_count(0)
    dates.get_by_label("To").fill(day)
    dates.get_by_role("button", name="Show trips").click()
    expect(card).to_be_visible()
    dates.get_by_label("From").fill(day)
    dates.get_by_label("To").fill(before)
    dates.get_by_role("button", name="Show trips").click()
    expect(dates).to_contain_text("The first day must not be after the last.")
    dates.get_by_role("button", name="All dates").click()
    expect(card).to_be_visible()
    expect(dates.get_by_label("From")).to_have_value("")

    # Torque's notice just before the drive: on the trip's timeline.
    notice = httpx.get(
        f"{web.url}/api/v1/torque",
        params={
            "token": web.token,
            "time": str(drive["start_ts"] - 250),
            "notice": "Trip started",
            "noticeClass": "org.prowl.torque.map.notices.TripNotice",
        },
    )
    assert notice.text == "OK!"
    card.get_by_role("heading").get_by_role("link").click()
    expect(page).to_have_url(re.compile(f"/trips/{drive['id']}$"))
    expect(page.locator('.chart-card[data-pid="SPEED"] canvas').first).to_be_visible()
    expect(page.locator('.chart-card[data-pid="RPM"] canvas').first).to_be_visible()
    expect(page.get_by_role("heading", name=re.compile("^Trip of "))).to_be_visible()
    timeline = page.get_by_role("region", name="Timeline")
    expect(timeline).to_contain_text("Trip started")
    expect(timeline).to_contain_text("(\u22120 s)")  # a minus sign: before the trip
    expect(page.locator('[data-fact="fuel-source"]')).to_contain_text("Fuel from")
    screenshot(page, "trip-detail-desktop")
    page.get_by_role("link", name="← All trips").click()
    expect(card).to_be_visible()


def test_alert_rule_fires_and_is_acknowledged(session: Session, web: WebStack) -> None:
    session.watch.allow(r"status of 422 ")  # a clear threshold on the wrong side, on purpose
    page = session.page()
    page.goto(f"/vehicles/{web.vehicle_id}/alerts")
    form = page.get_by_role("form", name="Add a rule")
    form.get_by_label("Kind").select_option("silence")
    expect(form.get_by_label("Threshold")).to_be_hidden()
    form.get_by_label("Kind").select_option("threshold")
    form.get_by_label("Name").fill("Over-revving")
    form.get_by_label("PID").select_option("RPM")
    form.get_by_label("When").select_option("above")
    form.get_by_role("button", name="Add rule").click()
    expect(form.get_by_role("alert")).to_have_text("Enter the threshold as a number.")
    form.get_by_label("Threshold").fill("6000")
    form.get_by_label("Clears at (optional)").fill("6500")
    form.get_by_role("button", name="Add rule").click()
    expect(form.get_by_role("alert")).to_contain_text("clear_threshold")
    form.get_by_label("Clears at (optional)").fill("5500")
    form.get_by_role("button", name="Add rule").click()
    rules = page.get_by_role("region", name="Rules")
    expect(rules).to_contain_text("Over-revving")
    expect(rules).to_contain_text("Engine speed above 6000 rpm (clears below 5500)")

    now = int(time.time() * 1000)
    web.ingest([(now + i * 500, "RPM", 6800.0) for i in range(4)])
    with owner_api(web) as client:
        path = f"/api/v1/vehicles/{web.vehicle_id}/alerts"
        wait_for("the alert", lambda: bool(client.get(path).json()))
    page.reload()
    history = page.get_by_role("region", name="Alert history")
    alert = history.get_by_role("listitem").filter(has_text="Over-revving")
    expect(alert).to_contain_text("Open")
    expect(page.get_by_role("region", name="Rules")).to_contain_text("Firing")
    screenshot(page, "alerts-desktop")
    alert.get_by_role("button", name=re.compile("^Acknowledge")).click()
    expect(alert).to_contain_text("Acknowledged")
    expect(alert.get_by_role("button")).to_have_count(0)


def test_sharing_add_remove_and_the_viewers_view(session: Session, web: WebStack) -> None:
    viewer_email = "passenger@example.com"
    web.add_user(viewer_email)
    session.watch.allow(r"status of 422 ")  # sharing with a malformed address, on purpose
    page = session.page()
    page.goto(f"/vehicles/{web.vehicle_id}")
    page.get_by_role("link", name="Sharing").click()
    shared = page.get_by_role("region", name="Shared with")
    pending = page.get_by_role("region", name="Invited, not yet accepted")
    expect(shared).to_contain_text("Not shared with anyone.")
    form = page.get_by_role("form", name="Share read-only")
    form.get_by_label("Their email").fill("nobody@@example")
    form.get_by_role("button", name="Invite").click()
    expect(form.get_by_role("alert")).to_be_visible()
    # An address with no account is invited like any other: nothing tells them apart.
    for email in ("nobody@example.com", viewer_email):
        form.get_by_label("Their email").fill(email)
        form.get_by_role("button", name="Invite").click()
        expect(pending).to_contain_text(email)
    expect(shared).to_contain_text("Not shared with anyone.")  # until they accept
    pending.get_by_role("button", name="Withdraw the invitation to nobody@example.com").click()
    expect(pending).not_to_contain_text("nobody@example.com")
    screenshot(page, "sharing-desktop")

    viewer = session.page(email=viewer_email)
    viewer.goto("/vehicles")
    invitations = viewer.get_by_role("region", name="Invitations")
    expect(invitations).to_contain_text(VEHICLE_NAME)
    expect(viewer.get_by_role("heading", name="No vehicles yet")).to_be_visible()
    screenshot(viewer, "invitation-desktop")
    invitations.get_by_role("button", name=f"Accept {VEHICLE_NAME}").click()
    expect(invitations).to_be_hidden()
    page.reload()
    expect(shared).to_contain_text(viewer_email)
    expect(pending).to_be_hidden()

    card = viewer.get_by_role("listitem").filter(has_text=VEHICLE_NAME)
    expect(card).to_contain_text("Shared with you")
    expect(card).to_contain_text("Volkswagen")
    expect(card.get_by_role("button", name=re.compile("^(Rename|Delete)"))).to_have_count(0)
    card.get_by_role("link", name=VEHICLE_NAME).click()
    expect(viewer.get_by_role("heading", level=1)).to_contain_text("Shared with you")
    tabs = viewer.get_by_role("navigation", name="Vehicle pages").get_by_role("link")
    expect(tabs).to_have_text(["Live", "History", "Trips", "Alerts", "Trouble codes"])
    tabs.filter(has_text="Alerts").click()
    expect(viewer.get_by_role("region", name="Rules")).to_be_visible()
    expect(viewer.get_by_role("form", name="Add a rule")).to_be_hidden()
    expect(
        viewer.get_by_role("button", name=re.compile("^(Delete|Pause|Acknowledge)"))
    ).to_have_count(0)
    tabs.filter(has_text="Trouble codes").click()
    expect(viewer.get_by_role("button", name="Clear codes…")).to_be_hidden()
    screenshot(viewer, "shared-vehicle-desktop")

    shared.get_by_role("button", name=f"Stop sharing with {viewer_email}").click()
    page.get_by_role("dialog").get_by_role("button", name="Remove").click()
    expect(shared).to_contain_text("Not shared with anyone.")
    viewer.goto("/vehicles")
    expect(viewer.get_by_role("heading", name="No vehicles yet")).to_be_visible()


def test_import_page_uploads_a_gpx_track_and_shows_the_summary(
    session: Session, web: WebStack
) -> None:
    page = session.page()
    page.goto(f"/vehicles/{web.vehicle_id}/import")
    expect(page.get_by_role("link", name="Import")).to_have_attribute("aria-current", "page")
    page.get_by_label("File").set_input_files(str(GPX_TRACK))
    page.get_by_label("Dry run (read, store nothing)").check()
    page.get_by_role("button", name="Import").click()
    summary = page.locator(".import-summary")
    expect(summary).to_contain_text("34 samples read: 34 would be stored (dry run")

    page.get_by_label("Dry run (read, store nothing)").uncheck()
    page.get_by_label("Format").select_option("gpx")
    page.get_by_role("button", name="Import").click()
    expect(summary).to_contain_text("34 samples read: 34 stored, 0 already stored before.")
    screenshot(page, "import-summary")

    session.watch.allow(r"status of 422 ")  # a file that is no log, on purpose
    junk: FilePayload = {
        "name": "junk.csv",
        "mimeType": "text/csv",
        "buffer": b"colour,shape\nred,round\n",
    }
    page.get_by_label("File").set_input_files(files=[junk])
    page.get_by_label("Format").select_option("")
    page.get_by_role("button", name="Import").click()
    expect(page.locator(".form-message")).to_contain_text("nothing was stored")
