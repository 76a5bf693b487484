"""The outbound policy on its own: URL forms, addresses, the operator's allow list (no network)."""

import ipaddress
import re

import pytest

from obd2_dashboard.kit.outbound import (
    OutboundPolicy,
    OutboundRefusedError,
    parse_networks,
    parse_url,
)


@pytest.mark.parametrize(
    ("url", "host", "port", "target"),
    [
        ("http://2130706433:6379/", "127.0.0.1", 6379, "/"),
        ("http://0x7f.1:6379/x", "127.0.0.1", 6379, "/x"),
        ("http://127.1/", "127.0.0.1", 80, "/"),
        ("http://0177.0.0.1/", "127.0.0.1", 80, "/"),
        ("http://0x7F000001/", "127.0.0.1", 80, "/"),
        ("http://169.254.43518/", "169.254.169.254", 80, "/"),
        ("http://[::1]:5432/", "::1", 5432, "/"),
        ("https://Hooks.Example.COM./a/b?c=d#frag", "hooks.example.com", 443, "/a/b?c=d"),
        ("https://xn--bcher-kva.example:8443", "xn--bcher-kva.example", 8443, "/"),
    ],
)
def test_hosts_are_read_the_way_browsers_and_libc_read_them(
    url: str, host: str, port: int, target: str
) -> None:
    parsed = parse_url(url)
    assert (parsed.host, parsed.port, parsed.target) == (host, port, target)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://user:pass@example.com/", "user name or password"),
        ("http://user@example.com/", "user name or password"),
        ("ftp://example.com/", "only http and https"),
        ("file:///etc/passwd", "only http and https"),
        ("gopher://127.0.0.1:6379/_INFO", "only http and https"),
        ("http://1.2.3.4.5/", "looks like an IPv4 address"),
        ("http://127.0.0.256/", "looks like an IPv4 address"),
        ("http://08.0.0.1/", "looks like an IPv4 address"),
        ("http://example.123/", "looks like an IPv4 address"),
        ("http://exa_mple.com/", "neither a DNS name"),
        ("http://-example.com/", "neither a DNS name"),
        ("http://[::1%25lo]/", "IPv6 address is not valid"),
        ("http://[::1/", "cannot be parsed"),
        ("http://example.com:0/", "port"),
        ("http://example.com:99999/", "port"),
        ("http://example.com:1:2/", "host is not valid"),
        ("http:///path", "no host"),
        ("http://example.com/a b", "spaces"),
        ("http://bücher.example/", "non-ASCII"),
        ("http://example.com\\@127.0.0.1/", "backslash"),
        ("http://example.com/" + "a" * 2048, "longer than 2048"),
    ],
)
def test_anything_but_a_plain_http_url_is_refused(url: str, reason: str) -> None:
    with pytest.raises(OutboundRefusedError, match=re.escape(reason)):
        parse_url(url)


@pytest.mark.parametrize(
    ("address", "reason", "allowable"),
    [
        ("127.0.0.1", "loopback network (127.0.0.0/8)", True),
        ("::1", "loopback network (::1/128)", True),
        ("10.9.8.7", "private network (10.0.0.0/8)", True),
        ("172.31.0.1", "private network (172.16.0.0/12)", True),
        ("192.168.1.20", "private network (192.168.0.0/16)", True),
        ("fd12:3456::1", "private network (fc00::/7)", True),
        ("169.254.1.1", "link-local network (169.254.0.0/16)", True),
        ("fe80::1", "link-local network (fe80::/10)", True),
        ("100.64.0.1", "carrier-grade NAT network (100.64.0.0/10)", True),
        ("::ffff:10.0.0.1", "private network (10.0.0.0/8)", True),
        ("::ffff:127.0.0.1", "loopback network (127.0.0.0/8)", True),
        ("::127.0.0.1", "IPv4-compatible range", True),
        ("64:ff9b::7f00:1", "NAT64 form of an IPv4 address that is in a loopback network", True),
        ("2002:7f00:1::1", "6to4", True),
        ("2001::1", "Teredo", True),
        ("192.0.2.1", "documentation", True),
        ("240.0.0.1", "reserved range", True),
        ("169.254.169.254", "cloud metadata service", False),
        ("169.254.170.2", "cloud metadata service", False),
        ("fd00:ec2::254", "cloud metadata service", False),
        ("100.100.100.200", "cloud metadata service", False),
        ("168.63.129.16", "cloud metadata service", False),
        ("::ffff:169.254.169.254", "cloud metadata service", False),
        ("0.0.0.0", "unspecified", False),
        ("::", "unspecified", False),
        ("224.0.0.1", "multicast", False),
        ("ff02::1", "multicast", False),
        ("255.255.255.255", "broadcast", False),
    ],
)
def test_addresses_that_are_not_public_are_refused(
    address: str, reason: str, allowable: bool
) -> None:
    with pytest.raises(OutboundRefusedError, match=re.escape(reason)) as refused:
        OutboundPolicy().check_address(ipaddress.ip_address(address))
    assert refused.value.allowable is allowable
    assert ("OUTBOUND_ALLOW_CIDRS" in str(refused.value)) is allowable


@pytest.mark.parametrize("address", ["93.184.215.14", "2606:4700::1111", "64:ff9b::5db8:d70e"])
def test_public_addresses_pass(address: str) -> None:
    assert OutboundPolicy().check_address(ipaddress.ip_address(address)) is not None


def test_the_allow_list_opens_its_ranges_and_nothing_more() -> None:
    policy = OutboundPolicy(parse_networks("192.168.1.0/24, 127.0.0.1, 169.254.0.0/16"))
    for address in ("192.168.1.20", "127.0.0.1", "::ffff:127.0.0.1", "169.254.1.1"):
        policy.check_address(ipaddress.ip_address(address))
    for address in ("192.168.2.1", "127.0.0.2", "169.254.169.254"):
        with pytest.raises(OutboundRefusedError):
            policy.check_address(ipaddress.ip_address(address))
    # The mapped form is the IPv4 address it carries: that is what is connected to.
    assert policy.check_address(ipaddress.ip_address("::ffff:127.0.0.1")) == (
        ipaddress.ip_address("127.0.0.1")
    )


async def test_metadata_names_are_refused_before_any_lookup() -> None:
    policy = OutboundPolicy(parse_networks("0.0.0.0/0, ::/0"))
    for name in ("metadata.google.internal", "metadata", "instance-data"):
        with pytest.raises(OutboundRefusedError, match="cloud metadata service"):
            await policy.check_url(f"http://{name.upper()}./computeMetadata/v1/")


def test_allow_list_entries_must_be_networks() -> None:
    assert parse_networks(" 10.0.0.0/8 ,, fd00::/8 ") == (
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("fd00::/8"),
    )
    with pytest.raises(ValueError, match="'home' is not an IP network"):
        parse_networks("10.0.0.0/8,home")
