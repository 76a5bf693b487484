"""The shell blocks of a guide, as the steps a test runs: the guide is the test's script.

A block the test runs is preceded by a comment that names it and says where it runs::

    <!-- step: packages -->
    ```sh
    apt-get install -y nginx
    ```

Attributes after the name, all optional: ``on=server`` (default) or ``on=workstation`` (the
operator's own machine, with a checkout of the repository); ``as=USER`` (default root);
``path=NAME`` (the block belongs to one of several alternatives, e.g. ``path=compose``: a run
takes the blocks of the path it follows and of no other); ``stdin=WHAT`` (the block reads WHAT
from its input, e.g. a password, which the test supplies). A block the test does not run says so
and why: ``<!-- not-run: shows the layout -->``. Every ``sh`` block carries one of the two, so a
command added to the guide without a marker fails the drift test instead of going untested.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

_MARKER = re.compile(r"<!--\s*(step|not-run):\s*(.*?)\s*-->")
_FENCE = re.compile(r"^```(\w*)\s*$")


@dataclass(frozen=True)
class Step:
    name: str
    script: str
    line: int
    on: str = "server"
    user: str = "root"
    path: str | None = None
    stdin: str | None = None


@dataclass(frozen=True)
class Guide:
    steps: tuple[Step, ...]
    unmarked: tuple[int, ...]  # line numbers of sh blocks with neither marker
    not_run: tuple[tuple[int, str], ...]

    def for_path(self, path: str) -> list[Step]:
        """The steps of one complete route through the guide, in order."""
        return [step for step in self.steps if step.path in (None, path)]

    def paths(self) -> set[str]:
        return {step.path for step in self.steps if step.path is not None}


def read_guide(file: Path) -> Guide:
    lines = file.read_text().splitlines()
    steps: list[Step] = []
    unmarked: list[int] = []
    not_run: list[tuple[int, str]] = []
    pending: tuple[str, str, int] | None = None
    index = 0
    while index < len(lines):
        line = lines[index]
        marker = _MARKER.search(line)
        if marker:
            pending = (marker.group(1), marker.group(2), index + 1)
            index += 1
            continue
        fence = _FENCE.match(line)
        if fence:
            language = fence.group(1)
            body: list[str] = []
            index += 1
            while index < len(lines) and not lines[index].startswith("```"):
                body.append(lines[index])
                index += 1
            start = index - len(body)
            if language == "sh":
                if pending is None:
                    unmarked.append(start)
                elif pending[0] == "not-run":
                    not_run.append((start, pending[1]))
                else:
                    steps.append(_step(pending[1], "\n".join(body) + "\n", start))
            pending = None
        elif line.strip():
            # A marker belongs to the block right after it, with nothing but blank lines between.
            pending = None
        index += 1
    names = [step.name for step in steps]
    duplicates = {name for name in names if names.count(name) > 1}
    if duplicates:
        raise ValueError(f"{file}: step names used twice: {sorted(duplicates)}")
    return Guide(tuple(steps), tuple(unmarked), tuple(not_run))


def _step(spec: str, script: str, line: int) -> Step:
    name, *attributes = spec.split()
    options: dict[str, str] = {}
    for attribute in attributes:
        key, separator, value = attribute.partition("=")
        if not separator or key not in {"on", "as", "path", "stdin"}:
            raise ValueError(f"line {line}: unknown step attribute {attribute!r}")
        options[key] = value
    if options.get("on", "server") not in {"server", "workstation"}:
        raise ValueError(f"line {line}: on= must be server or workstation")
    return Step(
        name=name,
        script=script,
        line=line,
        on=options.get("on", "server"),
        user=options.get("as", "root"),
        path=options.get("path"),
        stdin=options.get("stdin"),
    )
