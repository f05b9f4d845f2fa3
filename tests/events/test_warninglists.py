"""MISP warning lists as correlation uses them."""

from __future__ import annotations

import json
from importlib import resources

import pytest

from concord.events import warninglists


def test_every_shipped_list_loads_with_its_type() -> None:
    folder = resources.files("concord.events").joinpath("warninglists")
    shipped = {e.name.removesuffix(".json") for e in folder.iterdir() if e.name.endswith(".json")}
    loaded = warninglists.lists()
    assert shipped == set(loaded)
    assert {"public-dns-v4", "public-dns-v6", "rfc1918", "tranco10k", "google"} <= shipped
    for wl in loaded.values():
        assert wl.type in warninglists.TYPES
    assert "CC0-1.0" in folder.joinpath("LICENSE").read_text("utf-8")


def test_files_are_kept_as_misp_publishes_them() -> None:
    folder = resources.files("concord.events").joinpath("warninglists")
    data = json.loads(folder.joinpath("public-dns-v4.json").read_text("utf-8"))
    assert set(data) >= {"name", "version", "description", "type", "list"}
    assert "8.8.8.8" in data["list"]


@pytest.mark.parametrize(
    ("kind", "value", "expected"),
    [
        ("ipv4", "8.8.8.8", "public-dns-v4"),
        ("ipv4", "1.1.1.1", "public-dns-v4"),
        ("ipv4", "10.20.30.40", "rfc1918"),  # inside a listed network
        ("ipv6", "2001:4860:4860::8888", "public-dns-v6"),
        ("ipv6", "fe80::1", "ipv6-linklocal"),
        ("ipv6", "2001:db8::1", "rfc3849"),
        ("domain", "google.com", "google"),
        ("domain", "MICROSOFT.com", "tranco10k"),  # case does not matter
        ("domain", "login.microsoftonline.com", "tranco10k"),  # a subdomain of a listed site
        ("domain", "example.com", "rfc6761"),
        ("url", "https://www.google.com/", "google"),  # the bare site
        # networks within a listed range, and a bare site named by a listed address
        ("ipv4-net", "104.16.0.0/13", "cloudflare"),
        ("ipv4-net", "10.1.0.0/16", "rfc1918"),
        ("ipv6-net", "2606:4700::/32", "cloudflare"),
        ("url", "http://8.8.8.8/", "public-dns-v4"),
        ("url", "http://[2001:4860:4860::8888]/", "public-dns-v6"),
        # The empty file's hash, upper-case as some tools write it.
        (
            "sha256",
            "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
            "common-ioc-false-positive",
        ),
        ("md5", "d41d8cd98f00b204e9800998ecf8427e", "common-ioc-false-positive"),
    ],
)
def test_listed_values(kind: str, value: str, expected: str) -> None:
    assert warninglists.match(kind, value) == expected


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        ("ipv4", "45.137.21.9"),
        ("ipv6", "2a0d:5600:24:a4::1"),
        ("domain", "evil-c2-kz.net"),
        # A user's site on a platform is not the platform (tranco10k lists both of these).
        ("domain", "attacker.duckdns.org"),
        ("domain", "phish-kz.github.io"),
        ("domain", "bucket.s3.amazonaws.com"),
        # A URL with a path is not its site.
        ("url", "https://docs.google.com/forms/d/e/1FAIpQLSf/viewform"),
        ("url", "https://bit.ly/3xYzAbc"),
        ("url", "http://8.8.8.8/payload.exe"),
        # a network wider than any listed range holds more than what the lists name
        ("ipv4-net", "104.0.0.0/8"),
        ("ipv4-net", "45.137.21.0/24"),
        ("email", "invoice@gmail.com"),
        ("asn", "15169"),
        ("ipv4", "not an address"),
        ("nonsense-kind", "8.8.8.8"),
    ],
)
def test_values_not_listed(kind: str, value: str) -> None:
    assert warninglists.match(kind, value) is None


def test_lists_apply_only_to_their_attribute_types() -> None:
    # 8.8.8.8 is a public resolver as an address, not as a domain or hash value.
    assert warninglists.match("domain", "8.8.8.8") is None
    assert warninglists.match("md5", "8.8.8.8") is None
    # The platforms themselves stay listed.
    assert warninglists.match("domain", "duckdns.org") == "tranco10k"
    assert warninglists.match("url", "http://bit.ly") == "tranco10k"


def test_dynamic_dns_marks_a_boundary_not_a_false_positive() -> None:
    assert "dynamic-dns" in warninglists.lists()
    assert warninglists.match("domain", "c2.ddns.net") is None
    assert warninglists.match("domain", "ddns.net") is not None


def test_loaded_once() -> None:
    warninglists.match("ipv4", "8.8.8.8")
    before = warninglists._index.cache_info()
    for _ in range(3):
        warninglists.match("domain", "google.com")
    after = warninglists._index.cache_info()
    assert after.misses == before.misses and after.currsize == 1
