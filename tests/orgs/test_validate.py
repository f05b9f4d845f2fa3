"""The pure validators of organisation, contact and asset fields."""

from __future__ import annotations

import ipaddress
import json

import pytest

from concord.i18n import gettext
from concord.orgs import validate
from concord.orgs.model import AssetKind
from tests.conftest import FIXTURES

# --- prefixes ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("192.0.2.0/24", "192.0.2.0/24"),
        (" 198.51.100.128/25 ", "198.51.100.128/25"),
        ("203.0.113.7", "203.0.113.7/32"),
        ("0.0.0.0/0", "0.0.0.0/0"),
        ("2001:DB8::/32", "2001:db8::/32"),
        ("2001:0db8:0000:0200:0000:0000:0000:0000/56", "2001:db8:0:200::/56"),
        ("2001:db8::1", "2001:db8::1/128"),
    ],
)
def test_prefix_canonical(text: str, canonical: str) -> None:
    assert str(validate.prefix(text)) == canonical


def test_prefix_with_host_bits_suggests_the_network() -> None:
    with pytest.raises(ValueError, match=r"host bits are set \(did you mean 192\.0\.2\.0/24\?\)"):
        validate.prefix("192.0.2.77/24")
    with pytest.raises(ValueError, match=r"did you mean 2001:db8::/32\?"):
        validate.prefix("2001:db8::1/32")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "garbage",
        "192.0.2.0/33",
        "256.0.0.0/8",
        "192.0.2/24",
        "010.0.0.0/8",  # leading zeros are ambiguous (octal?) and refused
        "192.0.2.0/24/8",
        "2001:db8::/129",
        "2001:db8:::/48",
        "example.org",
    ],
)
def test_prefix_garbage_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="invalid IP prefix"):
        validate.prefix(text)


def test_prefix_with_a_zone_index_is_refused() -> None:
    # ipaddress accepts "fe80::%eth0/64", but the lookup tree cannot hold it (it crashed the
    # whole index build before the validator refused it).
    with pytest.raises(ValueError, match="zone index"):
        validate.prefix("fe80::%eth0/64")


def test_ipv4_mapped_ipv6_prefix_is_refused_with_the_ipv4_form() -> None:
    with pytest.raises(ValueError, match=r"give the IPv4 prefix 192\.0\.2\.0/24"):
        validate.prefix("::ffff:192.0.2.0/120")
    # A wider IPv6 prefix is an IPv6 network like any other.
    assert str(validate.prefix("::/0")) == "::/0"


# --- AS numbers ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "number"),
    [("AS64500", 64500), ("as64501", 64501), (" 65535 ", 65535), (4_200_000_000, 4_200_000_000)],
)
def test_asn_accepted(value: str | int, number: int) -> None:
    assert validate.asn(value) == number


def test_asn_bounds() -> None:
    assert validate.asn("1") == 1
    assert validate.asn("AS4294967295") == validate.MAX_ASN
    for bad in ("AS0", "0", "AS4294967296", "99999999999"):
        with pytest.raises(ValueError, match="between 1 and 4294967295"):
            validate.asn(bad)


@pytest.mark.parametrize(
    "value", ["", "AS", "AS-1", "AS 64500", "AS64500.5", "1.10", "ASN64500", "AS١٢٣", "²"]
)
def test_asn_garbage_is_refused(value: str) -> None:
    # Non-ASCII digits (Arabic-Indic, superscripts) pass str.isdigit but are not AS numbers.
    with pytest.raises(ValueError, match="use digits"):
        validate.asn(value)


# --- domains -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("example.org", "example.org"),
        ("Mail.Example.ORG", "mail.example.org"),
        ("example.org.", "example.org"),  # the root's trailing dot
        ("*.example.org", "example.org"),  # a wildcard covers the domain's sub-domains
        ("ab--cd.example", "ab--cd.example"),
        ("xn--e1afmkfd.xn--p1ai", "xn--e1afmkfd.xn--p1ai"),
        ("пример.рф", "xn--e1afmkfd.xn--p1ai"),
        ("ПРИМЕР.РФ", "xn--e1afmkfd.xn--p1ai"),
        ("bücher.example", "xn--bcher-kva.example"),
        ("пример。рф", "xn--e1afmkfd.xn--p1ai"),  # an ideographic full stop separates labels
        ("a.b", "a.b"),
    ],
)
def test_domain_canonical(text: str, canonical: str) -> None:
    assert validate.domain(text) == canonical


def test_idn_follows_idna2008_not_idna2003() -> None:
    # IDNA 2003 (Python's "idna" codec) maps ß to "ss", so an owner of faß.de would have been
    # recorded as the owner of fass.de, a different domain with another registrant.
    assert validate.domain("faß.de") == "xn--fa-hia.de"
    assert validate.domain("faß.de") != validate.domain("fass.de")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("localhost", "at least two valid labels"),
        ("example", "at least two valid labels"),
        ("192.0.2.1", "an IP address is not a domain"),
        ("10.0.0.1.", "an IP address is not a domain"),
        ("2001:db8::1", "at least two valid labels"),
        ("-bad.example", "at least two valid labels"),
        ("bad-.example", "at least two valid labels"),
        ("under_score.example", "at least two valid labels"),
        ("a..example", "at least two valid labels"),
        ("with space.example", "at least two valid labels"),
        ("*.*.example.org", "at least two valid labels"),
        ("https://example.org", "at least two valid labels"),
        (f"{'a' * 64}.example", "at least two valid labels"),
        ("", "invalid domain"),
        ("*.", "invalid domain"),
        ("☃.example", "not a valid internationalised name"),
    ],
)
def test_domain_refused(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        validate.domain(text)


def test_domain_length_is_checked_on_the_ascii_form() -> None:
    ascii_253 = ".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 61])
    assert validate.domain(ascii_253) == ascii_253
    with pytest.raises(ValueError, match="longer than 253"):
        validate.domain(ascii_253 + "d")
    # 236 characters as typed, 290 once each label is punycoded: too long for the DNS.
    unicode_name = ".".join(["ü" * 25] * 9) + ".de"
    assert len(unicode_name) < 253
    with pytest.raises(ValueError, match="longer than 253"):
        validate.domain(unicode_name)


# --- software: purls and CPE 2.3 -----------------------------------------------------------

# purl values as CycloneDX SBOMs carry them (CycloneDX/bom-examples, CC0-1.0).
SBOM_PURLS = [
    (
        "pkg:maven/com.fasterxml.jackson.core/jackson-databind@2.10.0?type=jar",
        "pkg:maven/com.fasterxml.jackson.core/jackson-databind?type=jar",
        "2.10.0",
    ),
    ("pkg:npm/minimist@0.0.8", "pkg:npm/minimist", "0.0.8"),
    (
        "pkg:golang/github.com/ProtonMail/go-crypto@v0.0.0-20201208171014-cdb7591792e2",
        "pkg:golang/github.com/ProtonMail/go-crypto",
        "v0.0.0-20201208171014-cdb7591792e2",
    ),
    ("pkg:npm/%40angular/core@16.2.0", "pkg:npm/%40angular/core", "16.2.0"),
    (
        "pkg:deb/debian/curl@7.50.3-1?distro=jessie&arch=i386",
        "pkg:deb/debian/curl?arch=i386&distro=jessie",  # qualifiers sorted
        "7.50.3-1",
    ),
    ("pkg:pypi/Django_Rest_Framework@3.14.0", "pkg:pypi/django-rest-framework", "3.14.0"),
    ("pkg:generic/openssl@1.1.1w#crypto/evp", "pkg:generic/openssl#crypto/evp", "1.1.1w"),
    ("pkg:npm/left-pad", "pkg:npm/left-pad", ""),
]


@pytest.mark.parametrize(("purl", "name", "version"), SBOM_PURLS)
def test_purl_name_and_version(purl: str, name: str, version: str) -> None:
    assert validate.software(purl) == (name, version)
    # The canonical name is a fixed point: validating it again changes nothing.
    assert validate.software(name, version) == (name, version)


def test_purls_of_real_cyclonedx_sboms() -> None:
    files = sorted((FIXTURES / "sbom" / "cyclonedx").glob("*.json"))
    assert files
    purls = set()
    for path in files:
        doc = json.loads(path.read_bytes())
        purls |= {c["purl"] for c in doc.get("components", []) if "purl" in c}
    assert len(purls) > 40
    for purl in purls:
        name, version = validate.software(purl)
        assert name.startswith("pkg:") and "@" not in name.split("?")[0].split("/")[-1]
        assert version, purl  # every component of these SBOMs names its version
        assert validate.software(name, version) == (name, version)


def test_purl_version_column() -> None:
    assert validate.software("pkg:npm/minimist", "1.2.8") == ("pkg:npm/minimist", "1.2.8")
    assert validate.software("pkg:npm/minimist@1.2.8", "1.2.8") == ("pkg:npm/minimist", "1.2.8")
    with pytest.raises(ValueError, match=r"version '1\.2\.8' contradicts the version '0\.0\.8'"):
        validate.software("pkg:npm/minimist@0.0.8", "1.2.8")


@pytest.mark.parametrize("purl", ["pkg:", "pkg:npm", "pkg:/minimist@1", "pkg:npm/@1.0"])
def test_invalid_purl(purl: str) -> None:
    with pytest.raises(ValueError, match="invalid package URL"):
        validate.software(purl)


@pytest.mark.parametrize(
    ("cpe", "version"),
    [
        ("cpe:2.3:a:apache:log4j:2.14.1:*:*:*:*:*:*:*", "2.14.1"),
        ("cpe:2.3:o:microsoft:windows_10:1607:*:*:*:*:*:x64:*", "1607"),
        ("cpe:2.3:a:hp:insight_diagnostics:7.4.0.1570:-:*:*:online:win2003:x64:*", "7.4.0.1570"),
        ("cpe:2.3:h:cisco:asa_5505:-:*:*:*:*:*:*:*", ""),
        ("cpe:2.3:a:apache:http_server:*:*:*:*:*:*:*:*", ""),
        ("cpe:2.3:a:foo\\+bar:baz:1\\:2:*:*:en-us:*:*:*:*", "1:2"),  # quoted characters
        ("cpe:2.3:a:apache:log4j:2.*:*:*:*:*:*:*:*", "2.*"),
    ],
)
def test_cpe_valid(cpe: str, version: str) -> None:
    name, got = validate.software(cpe)
    assert got == version
    # The version moves to its own column; the name keeps every other field.
    fields = cpe.lower().split(":")
    if version:
        assert name.split(":")[5] == "*"
    assert name.split(":")[:5] == fields[:5] and name.endswith(cpe.lower()[-6:])


def test_cpe_is_case_insensitive() -> None:
    upper = "cpe:2.3:a:Apache:Log4j:2.14.1:*:*:*:*:*:*:*"
    assert validate.software(upper) == ("cpe:2.3:a:apache:log4j:*:*:*:*:*:*:*:*", "2.14.1")


@pytest.mark.parametrize(
    "cpe",
    [
        "cpe:2.3:a:apache:log4j:2.14.1:*:*:*:*:*:*",  # 12 fields
        "cpe:2.3:a:apache:log4j:2.14.1:*:*:*:*:*:*:*:*",  # 14 fields
        "cpe:2.3:x:apache:log4j:2.14.1:*:*:*:*:*:*:*",  # part is a, o or h
        "cpe:2.3:a:apache software:log4j:2.14.1:*:*:*:*:*:*:*",  # unquoted space
        "cpe:2.3:a:apache:log4j:2.14.1:*:*:english:*:*:*:*",  # language is a tag
        "cpe:2.3:a:apache:log4j::*:*:*:*:*:*:*",  # empty field
        "cpe:2.3:a:apache:lo*g4j:2.14.1:*:*:*:*:*:*:*",  # * only at either end
        "cpe:2.3:a:apache:log4j:2.14.1:*:*:*:*:*:*:*\nx",
    ],
)
def test_cpe_invalid(cpe: str) -> None:
    with pytest.raises(ValueError, match=r"invalid CPE 2\.3 name"):
        validate.software(cpe)


def test_cpe_version_column() -> None:
    any_version = "cpe:2.3:a:apache:http_server:*:*:*:*:*:*:*:*"
    assert validate.software(any_version, "2.4.57") == (any_version, "2.4.57")
    assert validate.software("cpe:2.3:a:apache:log4j:2.14.1:*:*:*:*:*:*:*", "2.14.1")[1] == (
        "2.14.1"
    )
    with pytest.raises(ValueError, match=r"version '2\.17\.0' contradicts the version '2\.14\.1'"):
        validate.software("cpe:2.3:a:apache:log4j:2.14.1:*:*:*:*:*:*:*", "2.17.0")
    # A quoted character in the CPE's version is compared (and returned) unquoted.
    quoted = "cpe:2.3:a:example:tool:1\\:2:*:*:*:*:*:*:*"
    assert validate.software(quoted, "1:2") == ("cpe:2.3:a:example:tool:*:*:*:*:*:*:*:*", "1:2")
    with pytest.raises(ValueError, match="contradicts"):
        validate.software(quoted, "1\\:2")


@pytest.mark.parametrize("value", ["django", "log4j 2.14.1", "cpe:/a:apache:log4j:2.14.1", ""])
def test_software_neither_purl_nor_cpe(value: str) -> None:
    with pytest.raises(ValueError, match=r"give a package URL \(pkg:\.\.\.\) or a CPE 2\.3 name"):
        validate.software(value)


# --- asset kind detection ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "value", "expected"),
    [
        ("", "192.0.2.0/24", AssetKind.IPV4_PREFIX),
        ("", "2001:db8::/32", AssetKind.IPV6_PREFIX),
        ("prefix", "2001:db8::/32", AssetKind.IPV6_PREFIX),
        ("cidr", "192.0.2.0/24", AssetKind.IPV4_PREFIX),
        ("", "AS64500", AssetKind.ASN),
        ("as", "64500", AssetKind.ASN),
        ("", "pkg:npm/minimist@0.0.8", AssetKind.SOFTWARE),
        ("", "cpe:2.3:a:apache:log4j:2.14.1:*:*:*:*:*:*:*", AssetKind.SOFTWARE),
        ("", "example.org", AssetKind.DOMAIN),
        ("Email", "example.org", AssetKind.EMAIL_DOMAIN),
        ("email_domain", "example.org", AssetKind.EMAIL_DOMAIN),
        ("IPV6", "2001:db8::/32", AssetKind.IPV6_PREFIX),
        ("software", "anything", AssetKind.SOFTWARE),
        ("", "AS١٢٣", AssetKind.DOMAIN),  # not ASCII digits: not an AS number
    ],
)
def test_asset_kind(kind: str, value: str, expected: AssetKind) -> None:
    assert validate.asset_kind(kind, value) is expected


def test_asset_kind_refusals() -> None:
    with pytest.raises(ValueError, match=r"invalid IP prefix 'example\.org'"):
        validate.asset_kind("prefix", "example.org")
    with pytest.raises(ValueError, match="unknown asset kind 'colour'; use one of ipv4-prefix"):
        validate.asset_kind("colour", "red.example")


# --- country, language, e-mail, and the rest ----------------------------------------------


@pytest.mark.parametrize(("value", "code"), [("KZ", "KZ"), ("uz", "UZ"), (" kg ", "KG")])
def test_country(value: str, code: str) -> None:
    assert validate.country(value) == code


@pytest.mark.parametrize("value", ["", "XX", "KAZ", "Kazakhstan", "EU", "K"])
def test_country_refused(value: str) -> None:
    with pytest.raises(ValueError, match="ISO 3166-1 alpha-2"):
        validate.country(value)


@pytest.mark.parametrize(("value", "code"), [("en", "en"), ("RU", "ru"), (" ru ", "ru")])
def test_language(value: str, code: str) -> None:
    assert validate.language(value) == code


@pytest.mark.parametrize("value", ["", "de", "kk", "english", "ru-RU"])
def test_language_refused(value: str) -> None:
    with pytest.raises(ValueError, match=r"unsupported language .*use one of en, ru"):
        validate.language(value)


@pytest.mark.parametrize(
    ("value", "normalized"),
    [
        ("soc@steppe-bank.example", "soc@steppe-bank.example"),
        (" SOC@Steppe-Bank.Example ", "SOC@steppe-bank.example"),  # the domain part only
        ("cert+alerts@cert.example.kz", "cert+alerts@cert.example.kz"),
        ("дежурный@пример.рф", "дежурный@пример.рф"),
    ],
)
def test_email(value: str, normalized: str) -> None:
    assert validate.email(value) == normalized


@pytest.mark.parametrize(
    ("value", "reason", "in_russian"),
    [
        ("", "it has no @-sign", "в нём нет знака @"),
        ("soc", "it has no @-sign", "в нём нет знака @"),
        ("soc@", "nothing comes after the @-sign", "после знака @ ничего нет"),
        ("@example.org", "nothing comes before the @-sign", "перед знаком @ ничего нет"),
        ("soc@@example.org", "holds characters", "есть символы"),
        ("soc@localhost", "has no period", "нет точки"),
        ("a b@c.org", "holds characters", "есть символы"),
        ("a..b@c.org", "two periods in a row", "две точки подряд"),
    ],
)
def test_email_refused(value: str, reason: str, in_russian: str) -> None:
    # the library's own sentences are English only: each is said in the catalogue's words
    with pytest.raises(ValueError, match="invalid e-mail address") as refused:
        validate.email(value)
    assert reason in str(refused.value)
    said = gettext("ru", str(refused.value))
    assert said.startswith("недопустимый адрес e-mail") and in_russian in said


def test_slug_and_org_kind() -> None:
    assert validate.slug(" KZ-Bank ") == "kz-bank"
    for bad in ("", "-kz", "kz-", "kz bank", "kz_bank", "a" * 65):
        with pytest.raises(ValueError, match="invalid slug"):
            validate.slug(bad)
    assert validate.org_kind("National-Body").value == "national-body"
    with pytest.raises(ValueError, match="use one of centre, national-body, owner, partner"):
        validate.org_kind("bank")


def test_phone_and_pgp_key() -> None:
    assert validate.phone(" +7 (727) 123-45-67 ") == "+7 (727) 123-45-67"
    with pytest.raises(ValueError, match="invalid phone number"):
        validate.phone("call me")
    key = "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmQINBF...\n-----END PGP PUBLIC KEY BLOCK-----"
    assert validate.pgp_key(f"  {key}\n") == key
    with pytest.raises(ValueError, match="ASCII-armoured public key block"):
        validate.pgp_key("-----BEGIN PGP PRIVATE KEY BLOCK-----")


def test_prefix_returns_network_objects() -> None:
    assert validate.prefix("192.0.2.0/24") == ipaddress.IPv4Network("192.0.2.0/24")
    assert validate.prefix("2001:db8::/32").version == 6
