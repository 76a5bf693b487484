"""The shipped Alertmanager configuration: amtool accepts it, its routes send each severity to
the receiver meant for it, and its inhibitions name alerts that exist (amtool: Debian package
prometheus-alertmanager)."""

import re
import subprocess

import yaml

from infra.tests.conftest import REPO, tool

CONFIG = REPO / "infra/alertmanager/alertmanager.yml"
RULES = REPO / "infra/prometheus/obd2-dashboard.rules.yml"


def amtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool("amtool"), *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_config_is_valid() -> None:
    checked = amtool("check-config", str(CONFIG))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS" in checked.stdout


def test_critical_alerts_go_to_the_urgent_receiver_and_the_rest_to_the_operator() -> None:
    rules = yaml.safe_load(RULES.read_text())
    for rule in (r for g in rules["groups"] for r in g["rules"]):
        labels = [f"alertname={rule['alert']}", f"severity={rule['labels']['severity']}"]
        routed = amtool("config", "routes", "test", f"--config.file={CONFIG}", *labels)
        assert routed.returncode == 0, routed.stdout + routed.stderr
        expected = "operator-urgent" if rule["labels"]["severity"] == "critical" else "operator"
        assert routed.stdout.strip() == expected, (rule["alert"], routed.stdout)


def test_every_inhibition_names_alerts_of_the_rules() -> None:
    rules = yaml.safe_load(RULES.read_text())
    alerts = {r["alert"] for g in rules["groups"] for r in g["rules"]}
    config = yaml.safe_load(CONFIG.read_text())
    named: set[str] = set()
    for inhibition in config["inhibit_rules"]:
        for matcher in [*inhibition["source_matchers"], *inhibition["target_matchers"]]:
            found = re.fullmatch(r'alertname=~?"([A-Za-z0-9|]+)"', matcher)
            assert found, matcher
            named |= set(found.group(1).split("|"))
    assert named
    assert named <= alerts, named - alerts


def test_every_receiver_is_one_the_operator_fills_in() -> None:
    # Nothing is sent to a real address until the operator writes theirs.
    config = yaml.safe_load(CONFIG.read_text())
    for receiver in config["receivers"]:
        for kind in ("email_configs", "webhook_configs"):
            for target in receiver.get(kind, []):
                assert "CHANGE-ME" in (target.get("to") or target.get("url")), target
