"""The one way the server sends HTTP requests to addresses that users give it (webhooks, …).

A user who may name a URL could otherwise make the server reach what only it can reach: Redis
and PostgreSQL on loopback, the LAN, the cloud's metadata service (instance credentials), and
learn from the answers which ports are open. So:

- the URL is parsed strictly: http or https, no user name or password, a host that is a proper
  DNS name or an IP literal; a host that ends in a number is read as an IPv4 address the way
  browsers and libc read it (``2130706433``, ``0x7f.1``, ``127.1`` and ``0177.0.0.1`` are all
  127.0.0.1) and refused when it is not a valid one;
- cloud metadata names and addresses are refused always; loopback, private, link-local,
  carrier-grade NAT and other special-purpose addresses (also in their IPv4-mapped and NAT64
  forms) unless the operator opened their range (``OUTBOUND_ALLOW_CIDRS``); multicast,
  broadcast and unspecified addresses always;
- the host is resolved once per connection, every address checked, and the connection made to
  the checked address itself (the Host header and TLS SNI still name the host): a DNS answer
  that changes between the check and the connection (rebinding) cannot slip through;
- no redirects, no proxy from the environment, one deadline for the whole exchange, and at most
  ``max_response_bytes`` of the answer read.

Errors are coarse on purpose (:class:`OutboundFailedError` says only "no HTTP response"): a
refused connection, a filtered port and a port that does not speak HTTP look the same.
"""

import asyncio
import ipaddress
import socket
import string
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

ALLOW_SETTING = "OUTBOUND_ALLOW_CIDRS"
MAX_URL_LENGTH = 2048
DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024
DEFAULT_RESOLVE_TIMEOUT_S = 5.0

# Names of cloud metadata services (instance credentials): refused whatever they resolve to.
METADATA_NAMES = frozenset(
    {
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "instance-data",
        "instance-data.ec2.internal",
        "metadata.ec2.internal",
        "metadata.packet.net",
        "metadata.platformequinix.com",
    }
)
# Their addresses: refused even when the operator opened the range around them.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean, Hetzner, Oracle …
        "169.254.170.2",  # AWS ECS task metadata
        "fd00:ec2::254",  # AWS over IPv6
        "100.100.100.200",  # Alibaba Cloud
        "168.63.129.16",  # Azure's platform endpoint (a public address)
    )
)


def _nets(*pairs: tuple[str, str]) -> tuple[tuple[IPNetwork, str], ...]:
    return tuple((ipaddress.ip_network(net), label) for net, label in pairs)


# Never a destination, whatever the operator allows.
_NEVER = _nets(
    ("0.0.0.0/8", "an unspecified"),
    ("::/128", "an unspecified"),
    ("224.0.0.0/4", "a multicast"),
    ("ff00::/8", "a multicast"),
    ("255.255.255.255/32", "a broadcast"),
)
# Not public; the operator may open any of these with OUTBOUND_ALLOW_CIDRS.
_SPECIAL = _nets(
    ("127.0.0.0/8", "a loopback network"),
    ("10.0.0.0/8", "a private network"),
    ("172.16.0.0/12", "a private network"),
    ("192.168.0.0/16", "a private network"),
    ("100.64.0.0/10", "a carrier-grade NAT network"),
    ("169.254.0.0/16", "a link-local network"),
    ("192.0.0.0/24", "a reserved range"),
    ("192.0.2.0/24", "a documentation range"),
    ("198.51.100.0/24", "a documentation range"),
    ("203.0.113.0/24", "a documentation range"),
    ("198.18.0.0/15", "a benchmarking range"),
    ("240.0.0.0/4", "a reserved range"),
    ("::1/128", "a loopback network"),
    ("::/96", "the IPv4-compatible range"),
    ("64:ff9b:1::/48", "a local-use NAT64 network"),
    ("100::/64", "the discard-only range"),
    ("2001::/32", "the Teredo range"),
    ("2001::/23", "a reserved range"),
    ("2001:db8::/32", "a documentation range"),
    ("2002::/16", "the 6to4 range"),
    ("fc00::/7", "a private network"),
    ("fe80::/10", "a link-local network"),
    ("fec0::/10", "a site-local network"),
)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_HEX = frozenset(string.hexdigits)
_OCTAL = frozenset("01234567")
_LABEL_CHARACTERS = frozenset(string.ascii_lowercase + string.digits + "-")


class OutboundRefusedError(Exception):
    """The policy refuses this URL, name or address; the message says why, in one line."""

    def __init__(self, reason: str, *, allowable: bool = False) -> None:
        self.plain_reason = reason
        if allowable:
            reason += f"; the operator can allow it with {ALLOW_SETTING}"
        super().__init__(reason)
        self.reason = reason
        self.allowable = allowable


class UnresolvableHostError(Exception):
    """The host name has no address (now)."""


class OutboundFailedError(Exception):
    """No HTTP answer: could not connect, timed out, TLS failed, or the peer is not HTTP.

    ``str()`` is the same for every cause, so nothing shown to a user tells a closed port from
    a filtered one or from one that speaks something else; ``detail`` is for the operator's log.
    """

    def __init__(self, detail: str) -> None:
        super().__init__("no HTTP response")
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Target:
    """A URL as this module will request it."""

    scheme: str
    host: str  # lower-case DNS name without the final dot, dotted quad, or IPv6 (no brackets)
    port: int
    target: str  # path and query, at least "/"
    ip: IPAddress | None  # the host, when it is an address

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if isinstance(self.ip, ipaddress.IPv6Address) else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"


def _ipv4_part(part: str) -> int | None:
    """One part of an IPv4 host the way the URL standard (and inet_aton) reads it."""
    if part[:2] in {"0x", "0X"}:
        digits, base, allowed = part[2:], 16, _HEX
    elif len(part) > 1 and part[0] == "0":
        digits, base, allowed = part[1:], 8, _OCTAL
    else:
        digits, base, allowed = part, 10, frozenset(string.digits)
    if not digits:
        return 0 if base == 16 else None
    if not set(digits) <= allowed:
        return None
    return int(digits, base)


def _ends_in_a_number(host: str) -> bool:
    last = host.rsplit(".", 1)[-1]
    if last and last.isascii() and last.isdigit():
        return True
    return last[:2] in {"0x", "0X"} and set(last[2:]) <= _HEX


def parse_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """``host`` as an IPv4 address in any form a browser or libc accepts, or None."""
    parts = host.split(".")
    if len(parts) > 4 or not all(parts):
        return None
    numbers = [_ipv4_part(p) for p in parts]
    if any(n is None for n in numbers):
        return None
    values = [n for n in numbers if n is not None]
    *leading, last = values
    if any(n > 255 for n in leading) or last >= 256 ** (5 - len(values)):
        return None
    address = last
    for index, number in enumerate(leading):
        address += number << (8 * (3 - index))
    return ipaddress.IPv4Address(address)


def _dns_name(host: str) -> str:
    name = host.lower()
    if len(name) > 253:
        raise OutboundRefusedError("the host name is longer than 253 characters")
    for label in name.split("."):
        if (
            not 1 <= len(label) <= 63
            or not set(label) <= _LABEL_CHARACTERS
            or label.startswith("-")
            or label.endswith("-")
        ):
            raise OutboundRefusedError(
                "the host is neither a DNS name (letters, digits, hyphens) nor an IP address"
            )
    return name


def parse_url(url: str) -> Target:
    """The URL as it will be requested; OutboundRefusedError for anything not plainly HTTP."""
    if len(url) > MAX_URL_LENGTH:
        raise OutboundRefusedError(f"the URL is longer than {MAX_URL_LENGTH} characters")
    if not url.isascii() or any(c <= " " or c == "\x7f" for c in url):
        raise OutboundRefusedError(
            "the URL holds spaces, control or non-ASCII characters (percent-encode them)"
        )
    if "\\" in url:
        raise OutboundRefusedError("the URL holds a backslash")
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise OutboundRefusedError("the URL cannot be parsed") from exc
    scheme = parts.scheme.lower()
    if scheme not in {"http", "https"}:
        raise OutboundRefusedError("only http and https URLs are allowed")
    netloc = parts.netloc
    if "@" in netloc:
        raise OutboundRefusedError("the URL must not carry a user name or password")
    ip: IPAddress | None = None
    if netloc.startswith("["):
        literal, bracket, rest = netloc[1:].partition("]")
        if not bracket or "%" in literal:
            raise OutboundRefusedError("the URL's IPv6 address is not valid")
        try:
            ip = ipaddress.IPv6Address(literal)
        except ValueError as exc:
            raise OutboundRefusedError("the URL's IPv6 address is not valid") from exc
        host = str(ip)
        if rest and not rest.startswith(":"):
            raise OutboundRefusedError("the URL's host is not valid")
        port_text = rest[1:] if rest else ""
        has_port = bool(rest)
    else:
        host, has_port_sep, port_text = netloc.partition(":")
        has_port = bool(has_port_sep)
        if ":" in port_text:
            raise OutboundRefusedError("the URL's host is not valid")
        host = host.removesuffix(".")
        if not host:
            raise OutboundRefusedError("the URL has no host")
        if _ends_in_a_number(host):
            ip = parse_ipv4(host)
            if ip is None:
                raise OutboundRefusedError("the URL's host looks like an IPv4 address but is not")
            host = str(ip)
        else:
            host = _dns_name(host)
    default_port = 443 if scheme == "https" else 80
    if has_port and port_text:
        if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
            raise OutboundRefusedError("the URL's port is not a number from 1 to 65535")
        port = int(port_text)
    else:
        port = default_port
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    return Target(scheme, host, port, target, ip)


def parse_networks(text: str) -> tuple[IPNetwork, ...]:
    """``10.0.0.0/8, 192.168.1.20`` → networks; ValueError naming the entry that is not one."""
    networks = []
    for item in text.split(","):
        entry = item.strip()
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError as exc:
            raise ValueError(f"{entry!r} is not an IP network (e.g. 192.168.1.0/24)") from exc
    return tuple(networks)


async def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address the system resolver gives for ``host`` (tests replace this lookup)."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnresolvableHostError(f"{host} does not resolve") from exc
    addresses: list[IPAddress] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).partition("%")[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise UnresolvableHostError(f"{host} does not resolve")
    return addresses


class OutboundPolicy:
    """Which URLs and addresses outbound requests may reach."""

    def __init__(
        self,
        allow: Iterable[IPNetwork] = (),
        *,
        resolve_timeout_s: float = DEFAULT_RESOLVE_TIMEOUT_S,
    ) -> None:
        self.allow = tuple(allow)
        self.resolve_timeout_s = resolve_timeout_s

    def check_address(self, address: IPAddress) -> IPAddress:
        """The address to connect to (an IPv4-mapped one unwrapped), or OutboundRefusedError."""
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped  # on a dual-stack socket it is that IPv4 address
        if address in METADATA_ADDRESSES:
            raise OutboundRefusedError("the address is a cloud metadata service")
        for network, label in _NEVER:
            if address in network:
                raise OutboundRefusedError(
                    f"the address is {label} address ({network}), never a destination"
                )
        if any(address in network for network in self.allow):
            return address
        if isinstance(address, ipaddress.IPv6Address) and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
            try:
                self.check_address(embedded)
            except OutboundRefusedError as exc:
                rest = exc.plain_reason.removeprefix("the address ")
                raise OutboundRefusedError(
                    f"the address is the NAT64 form of an IPv4 address that {rest}",
                    allowable=exc.allowable,
                ) from None
            return address
        for network, label in _SPECIAL:
            if address in network:
                raise OutboundRefusedError(f"the address is in {label} ({network})", allowable=True)
        if not address.is_global:
            raise OutboundRefusedError(
                "the address is in a special-purpose range (not public)", allowable=True
            )
        return address

    async def addresses(self, host: str, port: int) -> list[IPAddress]:
        """The checked addresses of ``host`` (a parsed Target's host), resolved once."""
        try:
            literal: IPAddress | None = ipaddress.ip_address(host)
        except ValueError:
            literal = None
        if literal is not None:
            return [self.check_address(literal)]
        if host in METADATA_NAMES:
            raise OutboundRefusedError(f"{host} is a cloud metadata service")
        try:
            async with asyncio.timeout(self.resolve_timeout_s):
                found = await resolve(host, port)
        except TimeoutError as exc:
            raise UnresolvableHostError(f"{host} did not resolve in time") from exc
        checked = []
        for address in found:
            try:
                checked.append(self.check_address(address))
            except OutboundRefusedError as exc:
                reason = exc.plain_reason.removeprefix("the address ")
                raise OutboundRefusedError(
                    f"{host} resolves to an address that {reason}", allowable=exc.allowable
                ) from None
        return checked

    async def check_url(self, url: str) -> Target:
        """What saving a URL checks: its form, and the addresses its host has now."""
        target = parse_url(url)
        await self.addresses(target.host, target.port)
        return target


class _CheckedBackend(httpcore.AsyncNetworkBackend):
    """Connects only to addresses the policy accepted, resolved here, once per connection.

    (The ``timeout`` parameters are httpcore's interface, hence the noqa.)
    """

    def __init__(self, policy: OutboundPolicy) -> None:
        self.policy = policy
        self.inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        failure: Exception | None = None
        for address in await self.policy.addresses(host, port):
            try:
                return await self.inner.connect_tcp(
                    str(address), port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None  # addresses() never answers an empty list
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109
        socket_options: Any = None,
    ) -> httpcore.AsyncNetworkStream:
        raise OutboundRefusedError("unix sockets are not an outbound destination")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


@dataclass(frozen=True, slots=True)
class OutboundResponse:
    status: int
    body: bytes  # at most max_response_bytes
    truncated: bool  # the answer was longer; the rest was not read


class OutboundClient:
    """HTTP requests under an :class:`OutboundPolicy`; one per process, closed with ``aclose``."""

    def __init__(
        self,
        policy: OutboundPolicy,
        *,
        timeout_s: float,
        user_agent: str,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> None:
        self.policy = policy
        self.timeout_s = timeout_s
        self.user_agent = user_agent
        self.max_response_bytes = max_response_bytes
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            network_backend=_CheckedBackend(policy),
            max_connections=20,
            keepalive_expiry=30.0,
            retries=0,
        )

    async def aclose(self) -> None:
        await self._pool.aclose()

    async def post(self, url: str, content: bytes, headers: Mapping[str, str]) -> OutboundResponse:
        """POSTs ``content``; a redirect is an answer like any other (it is not followed).

        Raises OutboundRefusedError (nothing was sent), UnresolvableHostError or
        OutboundFailedError.
        """
        target = parse_url(url)
        sent: list[tuple[bytes, bytes]] = [
            (b"Host", target.host_header.encode()),
            (b"User-Agent", self.user_agent.encode()),
            (b"Content-Length", str(len(content)).encode()),
        ]
        sent += [(k.encode(), v.encode()) for k, v in headers.items()]
        return await self._send("POST", target, sent, content)

    async def _send(
        self, method: str, target: Target, headers: Sequence[tuple[bytes, bytes]], content: bytes
    ) -> OutboundResponse:
        url = httpcore.URL(
            scheme=target.scheme.encode(),
            host=target.host.encode(),
            port=target.port,
            target=target.target.encode(),
        )
        timeouts = dict.fromkeys(("connect", "read", "write", "pool"), self.timeout_s)
        try:
            # One deadline for the whole exchange: an answer trickled a byte at a time would
            # otherwise never trip the per-read timeout.
            async with asyncio.timeout(self.timeout_s):
                async with self._pool.stream(
                    method, url, headers=list(headers), content=content,
                    extensions={"timeout": timeouts},
                ) as response:  # fmt: skip
                    body = bytearray()
                    truncated = False
                    async for chunk in response.aiter_stream():
                        room = self.max_response_bytes - len(body)
                        body += chunk[:room]
                        if len(chunk) > room:
                            truncated = True
                            break
                    return OutboundResponse(response.status, bytes(body), truncated)
        except (OutboundRefusedError, UnresolvableHostError):
            raise
        except TimeoutError as exc:
            raise OutboundFailedError("timed out") from exc
        except (httpcore.TimeoutException, httpcore.NetworkError, httpcore.ProtocolError) as exc:
            raise OutboundFailedError(type(exc).__name__) from exc
        except OSError as exc:
            raise OutboundFailedError(type(exc).__name__) from exc
