"""doc/ops-deploy.md and the test that runs it cannot drift apart (no machine needed here).

``test_install_guide.py`` runs the guide's marked steps; these checks make sure that every shell
block of the guide is either such a step or says why the test does not run it, that both database
paths are complete routes, and that every file of the repository a step names exists.
"""

import re
from pathlib import Path

from obd2_testkit import REPO
from obd2_testkit.guide import read_guide

GUIDE = REPO / "doc" / "ops-deploy.md"
# Paths of this repository that a step copies or runs (relative to the checkout or the release).
REPO_PATH = re.compile(r"(?<![~\w/.-])((?:infra|deploy|doc|tools)/[\w./*-]+)")


def test_every_shell_block_is_run_or_says_why_not() -> None:
    guide = read_guide(GUIDE)
    assert not guide.unmarked, (
        f"sh blocks at lines {list(guide.unmarked)} of {GUIDE.name} have neither "
        "<!-- step: … --> nor <!-- not-run: why -->"
    )
    assert all(reason for _, reason in guide.not_run)


def test_both_database_paths_are_whole_routes() -> None:
    guide = read_guide(GUIDE)
    assert guide.paths() == {"packages", "compose"}
    for path in ("packages", "compose"):
        names = [step.name for step in guide.for_path(path)]
        # The order a reader follows: code on the machine, settings, data, units, TLS, deploy.
        order = [
            "release",
            "packages",
            "users",
            "unpack",
            "settings",
            "units",
            "tls",
            "first-deploy",
            "first-user",
        ]
        assert [name for name in names if name in order] == order, names
        assert f"data-{path}" in names
        assert names.index(f"data-{path}") < names.index("first-deploy")


def test_files_the_steps_name_exist() -> None:
    for step in read_guide(GUIDE).steps:
        for match in REPO_PATH.finditer(step.script):
            name = match.group(1).rstrip(".")
            if "*" in name:
                assert list(REPO.glob(name)), f"step {step.name}: nothing matches {name}"
            elif "$" not in name:
                assert (REPO / name).exists(), f"step {step.name} (line {step.line}) names {name}"


def test_the_guide_names_no_secret_of_its_own() -> None:
    # Every password and secret a step sets is generated on the machine, never written out.
    text = GUIDE.read_text()
    assert "CHANGE_ME" not in "".join(step.script for step in read_guide(GUIDE).steps)
    assert not re.search(r"PASSWORD=[A-Za-z0-9]{8,}", text)


def test_steps_run_top_to_bottom_without_a_person() -> None:
    # An editor, a pager or a prompt would hang the test: steps use sed, tee and -y/-n instead.
    for step in read_guide(GUIDE).steps:
        for word in ("editor ", "nano ", "vim ", "less ", "read -p"):
            assert word not in step.script, f"step {step.name} waits for a person ({word.strip()})"
        for line in step.script.splitlines():
            if re.match(r"\s*(apt-get|apt) install", line):
                assert " -y" in line, f"step {step.name}: apt-get install without -y"
            if re.search(r"\bcertbot (certonly|renew|run)\b", line):
                assert " -n" in step.script, f"step {step.name}: certbot without -n"


def test_a_failing_command_stops_its_step() -> None:
    # Steps run under `set -e`, which ignores a failure anywhere in `a && b` but at its end: a
    # failed `nginx -t && systemctl reload nginx` would go on silently, to the reader as well.
    for step in read_guide(GUIDE).steps:
        for number, line in enumerate(step.script.splitlines(), start=step.line):
            assert "&&" not in line, f"step {step.name}, line {number}: one command per line"


def test_the_step_format_is_understood(tmp_path: Path) -> None:
    sample = tmp_path / "guide.md"
    sample.write_text(
        "<!-- step: one on=workstation -->\n```sh\necho 1\n```\n\n"
        "<!-- step: two path=a stdin=password -->\n\n```sh\necho 2\n```\n"
        "<!-- step: stale -->\nsome text in between\n```sh\necho 3\n```\n"
        "<!-- not-run: a layout -->\n```sh\nls\n```\n```text\nnot shell\n```\n"
    )
    guide = read_guide(sample)
    assert [(s.name, s.on, s.path, s.stdin) for s in guide.steps] == [
        ("one", "workstation", None, None),
        ("two", "server", "a", "password"),
    ]
    assert len(guide.unmarked) == 1  # the marker before text no longer applies
    assert guide.not_run[0][1] == "a layout"
    assert [s.name for s in guide.for_path("b")] == ["one"]


def test_the_guide_installs_the_uv_the_repository_pins() -> None:
    pinned = re.search(r"^UV_VERSION=(\S+)$", (REPO / "tools/bootstrap.sh").read_text(), re.M)
    assert pinned is not None
    steps = "".join(step.script for step in read_guide(GUIDE).steps)
    assert f"uv=={pinned.group(1)}" in steps
