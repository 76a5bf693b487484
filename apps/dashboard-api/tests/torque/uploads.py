"""Torque uploads for the tests: the real drive, ours, and a way to send them."""

import gzip
import re
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

import httpx

FIXTURES = Path(__file__).with_name("fixtures")
REAL_LOG = FIXTURES / "econpy-torque" / "debug-apache-access-logs.txt.gz"
OWN_DRIVE = FIXTURES / "own-drive.txt"

Upload = list[tuple[str, str]]

_REQUEST = re.compile(rb'"GET [^ ?]*upload_data\.php\?(?P<query>[^ ]*) HTTP/1\.[01]"')
_APACHE_ESCAPE = re.compile(rb"\\x([0-9a-f]{2})")
# What Torque uses for "no value", as the app writes it.
NO_VALUE_TEXTS = frozenset(
    {"NaN", "Infinity", "-Infinity", "3.4028235E38", "-3.4028235E38", "3.4028E38", "-3.4028E38"}
)
VALUE_KEY = re.compile(r"^k[0-9a-fA-F]{1,8}$")


def real_uploads() -> list[Upload]:
    """The real drive's uploads in the order Apache logged them, as Torque sent them: Apache's
    ``\\xhh`` escapes turned back into the bytes they stand for."""
    uploads: list[Upload] = []
    for line in gzip.decompress(REAL_LOG.read_bytes()).splitlines():
        match = _REQUEST.search(line)
        if match is None:
            continue
        query = _APACHE_ESCAPE.sub(lambda m: bytes([int(m.group(1), 16)]), match.group("query"))
        uploads.append(parse_qsl(query.decode("utf-8"), keep_blank_values=True))
    return uploads


def own_uploads() -> list[Upload]:
    return [
        parse_qsl(line, keep_blank_values=True)
        for line in OWN_DRIVE.read_text().splitlines()
        if line
    ]


async def send(client: httpx.AsyncClient, token: str, upload: Upload) -> httpx.Response:
    return await client.get("/api/v1/torque", params=[("token", token), *upload])


async def post(client: httpx.AsyncClient, token: str, upload: Upload) -> httpx.Response:
    """As a form body, as Torque does when set to POST (no limit of a URL's length)."""
    return await client.post(
        "/api/v1/torque",
        params={"token": token},
        content=urlencode(upload),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )


async def send_all(client: httpx.AsyncClient, token: str, uploads: Sequence[Upload]) -> None:
    for upload in uploads:
        response = await send(client, token, upload)
        assert response.status_code == 200, response.text
        assert response.text == "OK!"


def value_fields(upload: Upload) -> list[tuple[str, str]]:
    return [(key, value) for key, value in upload if VALUE_KEY.match(key)]


def last_value(uploads: Sequence[Upload], key: str) -> float:
    """The value of ``key`` in the newest upload that has it."""
    newest = max(
        (upload for upload in uploads if any(k == key for k, _ in upload)),
        key=lambda upload: int(dict(upload)["time"]),
    )
    return float(dict(newest)[key])
