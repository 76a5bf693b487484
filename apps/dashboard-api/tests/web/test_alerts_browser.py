"""Alerts in a real browser, at desktop and phone sizes: the open-alert badge on the vehicle card
and in the vehicle header, the history newest first with its next page, and a rule edited in its
form with the cooldown explained. axe-core finds nothing serious on either page."""

import re
import time

import pytest
from playwright.sync_api import Page, expect

from tests.web.browser import (
    DESKTOP,
    PHONE,
    Session,
    WebStack,
    axe_violations,
    owner_api,
    screenshot,
    wait_for,
)

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("web-browser")]

SIZES = {"desktop": DESKTOP, "phone": PHONE}
EARLIER_EPISODES = 24  # with the three below and the open one: more than one page of 20


@pytest.fixture(scope="module")
def alerting(web: WebStack) -> list[dict[str, object]]:
    """A coolant rule and its alerts, fired out of time order, the newest still open; the
    history as the API lists it."""
    now = int(time.time() * 1000)
    with owner_api(web) as client:
        base = f"/api/v1/vehicles/{web.vehicle_id}"
        made = client.post(
            f"{base}/alert-rules",
            json={
                "name": "Hot engine",
                "kind": "threshold",
                "pid": "COOLANT_TEMP",
                "op": "above",
                "threshold": 85,
                "cooldown_s": 0,
            },
        )
        assert made.status_code == 201, made.text
        web.backdate_alert_rules(now - 3 * 3600_000)

        def episode(start: int, values: list[float]) -> list[tuple[int, str, float]]:
            return [(start + i * 5_000, "COOLANT_TEMP", v) for i, v in enumerate(values)]

        minute = 60_000
        # Sent 10, 30, then 20 minutes back: the ids of their alerts are not in time order.
        for ago in (10, 30, 20):
            web.ingest(episode(now - ago * minute, [90.0, 91.0, 80.0]))
        early: list[tuple[int, str, float]] = []
        for n in range(EARLIER_EPISODES):
            early += episode(now - (100 + 2 * n) * minute, [88.0, 80.0])
        web.ingest(early)
        web.ingest(episode(now - 2 * minute, [95.0, 96.0]))  # still hot: the alert stays open
        expected = EARLIER_EPISODES + 4

        def history() -> list[dict[str, object]]:
            found: list[dict[str, object]] = client.get(f"{base}/alerts?limit=500").json()
            return found

        wait_for(f"{expected} alerts", lambda: len(history()) == expected)
        return history()


def _fired_times(page: Page) -> list[str]:
    found = page.locator(".alert-list time").evaluate_all(
        "nodes => nodes.map(n => n.getAttribute('datetime'))"
    )
    return [str(when) for when in found]


@pytest.mark.parametrize("size", SIZES)
def test_an_open_alert_shows_on_the_vehicle_and_the_history_is_newest_first(
    session: Session, web: WebStack, alerting: list[dict[str, object]], size: str
) -> None:
    page = session.page(viewport=SIZES[size], bypass_csp=True)  # axe-core is injected
    page.goto("/vehicles")
    card = page.locator(".vehicle-card")
    badge = card.get_by_role("link", name="1 open alert")
    expect(badge).to_be_visible()
    assert axe_violations(page) == []
    screenshot(page, f"vehicles-open-alert-{size}")
    badge.click()
    expect(page).to_have_url(re.compile(rf"/vehicles/{web.vehicle_id}/alerts$"))
    expect(page.locator(".vehicle-title").get_by_role("link", name="1 open alert")).to_be_visible()

    history = page.get_by_role("region", name="Alert history")
    items = history.locator(".alert-card")
    expect(items).to_have_count(20)
    newest = items.first
    expect(newest).to_contain_text("Open")
    expect(newest).to_contain_text("Engine coolant temperature 95 °C above 85 °C")
    expect(history).not_to_contain_text("COOLANT_TEMP")
    ids = [str(a["id"]) for a in alerting]
    shown = items.evaluate_all("nodes => nodes.map(n => n.dataset.alert)")
    assert shown == ids[:20]
    times = _fired_times(page)
    assert times == sorted(times, reverse=True)
    assert axe_violations(page) == []
    screenshot(page, f"alerts-history-{size}")

    older = history.get_by_role("button", name="Show older alerts")
    older.click()
    expect(items).to_have_count(len(alerting))
    expect(older).to_be_hidden()
    assert items.evaluate_all("nodes => nodes.map(n => n.dataset.alert)") == ids
    times = _fired_times(page)
    assert times == sorted(times, reverse=True)


@pytest.mark.parametrize("size", SIZES)
def test_a_rule_is_edited_in_its_form_with_its_cooldown_explained(
    session: Session, web: WebStack, alerting: list[dict[str, object]], size: str
) -> None:
    name = f"Fast ({size})"
    with owner_api(web) as client:
        base = f"/api/v1/vehicles/{web.vehicle_id}/alert-rules"
        made = client.post(
            base,
            json={
                "name": name,
                "kind": "threshold",
                "pid": "SPEED",
                "op": "above",
                "threshold": 80,
                "duration_s": 2,
            },
        )
        assert made.status_code == 201, made.text
        rule_id = made.json()["id"]
    try:
        page = session.page(viewport=SIZES[size], bypass_csp=True)  # axe-core is injected
        page.goto(f"/vehicles/{web.vehicle_id}/alerts")
        card = page.locator(f'.rule-card[data-rule="{rule_id}"]')
        expect(card).to_contain_text("stays quiet for 5 min even if the condition holds again")
        card.get_by_role("button", name=f"Edit rule {name}").click()

        form = page.get_by_role("form", name=f"Edit rule {name}")
        expect(form).to_be_visible()
        cooldown = form.get_by_label("Cooldown (minutes)")
        expect(cooldown).to_have_value("5")
        expect(form.get_by_label("Threshold")).to_have_value("80")
        expect(form.get_by_label("For (seconds)")).to_have_value("2")
        hint = form.locator(".hint", has_text="speed above 80 for 2 s")
        expect(hint).to_contain_text("stays quiet for 5 min")
        expect(hint).to_contain_text("Default 5 min")
        assert axe_violations(page) == []
        screenshot(page, f"alerts-edit-rule-{size}")

        cooldown.fill("1")
        expect(hint).to_contain_text("stays quiet for 1 min")
        form.get_by_label("Threshold").fill("90")
        form.get_by_role("button", name="Save changes").click()
        expect(
            page.get_by_role("status").filter(has_text=f"Rule {name} was saved.")
        ).to_be_visible()
        expect(card).to_contain_text("above 90 km/h for 2 s")
        expect(card).to_contain_text("stays quiet for 1 min")
        expect(page.get_by_role("form", name="Add a rule")).to_be_visible()

        with owner_api(web) as client:
            saved = client.get(f"{base}/{rule_id}").json()
        assert (saved["cooldown_s"], saved["threshold"], saved["name"]) == (60, 90, name)
    finally:
        with owner_api(web) as client:
            assert client.delete(f"{base}/{rule_id}").status_code == 204
